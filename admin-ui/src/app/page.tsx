"use client";
// Runs: newest first with waiting-for-approval on top, kept live by /admin `run_status` events.
import Link from "next/link";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { StatusBadge, statusLabel } from "@/components/Badges";
import { type AdminEvent, ApiError, type Run, type RunsPage, STATUSES, api } from "@/lib/api";
import { fmtTime, shortId } from "@/lib/format";
import { useAdminEvents } from "@/lib/hooks";

const PAGE = 100;
const order = (a: Run, b: Run) =>
  Number(b.status === "waiting_approval") - Number(a.status === "waiting_approval") ||
  (b.created_at ?? "").localeCompare(a.created_at ?? "");

export default function RunsListPage() {
  const [status, setStatus] = useState("");
  const [workflow, setWorkflow] = useState("");
  const [workflows, setWorkflows] = useState<string[]>([]);
  const [runs, setRuns] = useState<Run[] | null>(null);
  const [counts, setCounts] = useState<RunsPage["counts"]>({});
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState("");
  const countsTimer = useRef<ReturnType<typeof setTimeout>>(undefined);

  const load = useCallback(async () => {
    try {
      // Without a status filter, runs waiting for approval come first even when they are old.
      const [page, waiting] = await Promise.all([
        api.runs({ status, workflow, limit: PAGE }),
        status ? null : api.runs({ status: "waiting_approval", workflow, limit: PAGE }),
      ]);
      const seen = new Set(page.runs.map((r) => r.thread_id));
      setRuns([...page.runs, ...(waiting?.runs.filter((r) => !seen.has(r.thread_id)) ?? [])]);
      setCounts(page.counts);
      setCursor(page.next_cursor);
      setError("");
    } catch (err) {
      setError((err as ApiError).message);
    }
  }, [status, workflow]);

  useEffect(() => void load(), [load]);
  useEffect(() => {
    api.workflows().then((w) => setWorkflows(w.workflows.map((x) => x.name)), () => {});
  }, []);

  const loadMore = async () => {
    try {
      const page = await api.runs({ status, workflow, limit: PAGE, cursor });
      setRuns((prev) => [...(prev ?? []), ...page.runs.filter((r) => !prev?.some((p) => p.thread_id === r.thread_id))]);
      setCursor(page.next_cursor);
    } catch (err) {
      setError((err as ApiError).message);
    }
  };

  const refreshCounts = () => {
    clearTimeout(countsTimer.current);
    countsTimer.current = setTimeout(() => {
      api.runs({ limit: 1 }).then((p) => setCounts(p.counts), () => {});
    }, 300);
  };

  useAdminEvents((event: AdminEvent) => {
    if (event.type !== "run_status") return;
    const d = event.data;
    const matches = (!status || d.status === status) && (!workflow || d.workflow === workflow);
    setRuns((prev) => {
      if (!prev) return prev;
      const known = prev.find((r) => r.thread_id === d.thread_id);
      if (!known) return matches ? [{ thread_id: d.thread_id, workflow: d.workflow, status: d.status, created_at: d.at, updated_at: d.at }, ...prev] : prev;
      if (!matches) return prev.filter((r) => r !== known);
      return prev.map((r) => (r === known ? { ...r, status: d.status, updated_at: d.at, error: d.error ?? r.error } : r));
    });
    refreshCounts();
  }, load);

  const sorted = useMemo(() => (runs ? [...runs].sort(order) : null), [runs]);
  const all = Object.values(counts).reduce((a, b) => a + (b ?? 0), 0);

  return (
    <>
      <h1>Runs</h1>
      <div className="filters" role="group" aria-label="Filter by status">
        <button aria-pressed={status === ""} onClick={() => setStatus("")}>
          all <span className="count">{all}</span>
        </button>
        {STATUSES.map((s) => (
          <button key={s} aria-pressed={status === s} onClick={() => setStatus(s)} className={`f-${s}`}>
            {statusLabel(s)} <span className="count" data-count={s}>{counts[s] ?? 0}</span>
          </button>
        ))}
        <label className="wf">
          Workflow{" "}
          <select value={workflow} onChange={(e) => setWorkflow(e.target.value)}>
            <option value="">all</option>
            {workflows.map((w) => (
              <option key={w}>{w}</option>
            ))}
          </select>
        </label>
      </div>
      {error && <p className="msg-error" role="alert">Could not load runs: {error}</p>}
      {sorted === null && !error && <p className="muted">Loading…</p>}
      {sorted?.length === 0 && (
        <p className="muted">
          No runs{status || workflow ? " match these filters" : " yet"}. <Link href="/start/">Start one</Link>.
        </p>
      )}
      {!!sorted?.length && (
        <table className="runs">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Run</th>
              <th scope="col">Workflow</th>
              <th scope="col">Started</th>
              <th scope="col" className="wide">Updated</th>
            </tr>
          </thead>
          <tbody>
            {sorted.map((r) => (
              <tr key={r.thread_id} data-thread={r.thread_id}>
                <td><StatusBadge status={r.status} /></td>
                <td>
                  <Link href={`/run/?id=${encodeURIComponent(r.thread_id)}`} className="mono" title={r.thread_id}>
                    {shortId(r.thread_id)}
                  </Link>
                </td>
                <td>{r.workflow}</td>
                <td>{fmtTime(r.created_at)}</td>
                <td className="wide">{fmtTime(r.updated_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {cursor && (
        <button className="more" onClick={loadMore}>
          Load more runs
        </button>
      )}
    </>
  );
}
