"use client";
// Waiting for you: every pending approval across runs, oldest first (GET /admin/approvals), refetched
// on /admin `approval` and `run_status` events, with each deadline's countdown and default action.
import Link from "next/link";
import { useCallback, useEffect, useRef, useState } from "react";
import { type AdminEvent, type Approval, ApiError, api } from "@/lib/api";
import { fmtDuration, fmtTime, shortId } from "@/lib/format";
import { useAdminEvents } from "@/lib/hooks";
import { summary } from "@/lib/interrupts";

const PAGE = 100;

/** The question a workflow asks, the tool calls an agent wants reviewed, or the value as short JSON. */
const question = (value: unknown) => summary(value);

export default function ApprovalsPage() {
  const [items, setItems] = useState<Approval[] | null>(null);
  const [total, setTotal] = useState(0);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  // Deadlines count down from when the server answered (its `seconds_left`), not by the browser's clock.
  const [fetchedAt, setFetchedAt] = useState(0);
  const [now, setNow] = useState(() => Date.now());
  const reload = useRef<ReturnType<typeof setTimeout>>(undefined);

  const load = useCallback(async () => {
    try {
      const page = await api.approvals({ limit: PAGE });
      setFetchedAt(Date.now());
      setItems(page.approvals);
      setTotal(page.total);
      setCursor(page.next_cursor);
      setError("");
    } catch (err) {
      setError((err as ApiError).message);
    }
  }, []);

  useEffect(() => void load(), [load]);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  useEffect(() => () => clearTimeout(reload.current), []);

  const loadMore = async () => {
    try {
      const page = await api.approvals({ limit: PAGE, cursor });
      const known = new Set(items?.map((a) => a.thread_id + a.interrupt_id));
      setItems([...(items ?? []), ...page.approvals.filter((a) => !known.has(a.thread_id + a.interrupt_id))]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError((err as ApiError).message);
    }
  };

  useAdminEvents((event: AdminEvent) => {
    if (event.type !== "approval" && event.type !== "run_status") return;
    // A burst of events (a deadline, a resume) costs one request.
    clearTimeout(reload.current);
    reload.current = setTimeout(() => void load(), 200);
  }, load);

  const left = (a: Approval) => (a.seconds_left === null ? null : a.seconds_left - (now - fetchedAt) / 1000);

  return (
    <>
      <h1>
        Waiting for you <span className="count muted" data-testid="approvals-total">{total}</span>
      </h1>
      {error && <p className="msg-error" role="alert">Could not load the approvals: {error}</p>}
      {items === null && !error && <p className="muted">Loading…</p>}
      {items?.length === 0 && <p className="muted">Nothing is waiting for a decision.</p>}
      {!!items?.length && (
        <table className="runs approvals">
          <thead>
            <tr>
              <th scope="col">Question</th>
              <th scope="col">Run</th>
              <th scope="col">Workflow</th>
              <th scope="col" className="wide">Waiting since</th>
              <th scope="col">Deadline</th>
            </tr>
          </thead>
          <tbody>
            {items.map((a) => {
              const seconds = left(a);
              return (
                <tr key={a.thread_id + a.interrupt_id} data-thread={a.thread_id}>
                  <td className="question">{question(a.value)}</td>
                  <td>
                    <Link href={`/run/?id=${encodeURIComponent(a.thread_id)}`} className="mono" title={a.thread_id}>
                      {shortId(a.thread_id)}
                    </Link>
                  </td>
                  <td>{a.workflow}</td>
                  <td className="wide">
                    {fmtTime(a.waiting_since)}{" "}
                    <span className="muted small">({fmtDuration((now - Date.parse(a.waiting_since)) / 1000)})</span>
                  </td>
                  <td className="deadline" title={a.deadline ?? undefined}>
                    {seconds === null ? (
                      <span className="muted">none</span>
                    ) : (
                      <>
                        <span className={`badge da-${a.default_action}`}>{a.default_action}</span>{" "}
                        {seconds > 0 ? `in ${fmtDuration(seconds)}` : "now"}
                      </>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {cursor && (
        <button className="more" onClick={loadMore}>
          Load more
        </button>
      )}
    </>
  );
}
