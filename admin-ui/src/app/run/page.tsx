"use client";
// Run detail (/ui/run/?id=…): live log, checkpoint timeline, state, the thread's runs, the pending
// interrupt (whatever its shape), cancel.
import Link from "next/link";
import { useSearchParams } from "next/navigation";
import { Suspense, useCallback, useEffect, useRef, useState } from "react";
import { ApprovalPanel, type Notice } from "@/components/Approval";
import { StatusBadge } from "@/components/Badges";
import { LogView } from "@/components/LogView";
import { type AdminEvent, ApiError, type Checkpoint, type Decision, type RunState, type ThreadRun, api } from "@/lib/api";
import { fmtTime, pretty, shortId } from "@/lib/format";
import { useAdminEvents } from "@/lib/hooks";
import { resumeSummary } from "@/lib/interrupts";
import { useLogFeed } from "@/lib/logfeed";

export default function RunPage() {
  return (
    <Suspense fallback={<p className="muted">Loading…</p>}>
      <RunFromQuery />
    </Suspense>
  );
}

function RunFromQuery() {
  const id = useSearchParams().get("id");
  if (!id) {
    return (
      <p>
        No run selected. <Link href="/">Back to the runs</Link>.
      </p>
    );
  }
  return <RunView key={id} threadId={id} />;
}

const RUNS_SHOWN = 50;
const DECIDED: Record<string, string> = { approve: "approved", reject: "rejected", cancel: "cancelled", resume: "answered" };

/** The thread's runs: each execution on it (its first input, every resume), newest first. */
function ThreadRuns({ runs, error, latest }: { runs: ThreadRun[] | null; error: string; latest: string | null }) {
  if (runs === null && !error) return null;
  return (
    <section aria-labelledby="h-runs">
      <h2 id="h-runs">
        Runs <span className="muted small">{runs ? (runs.length >= RUNS_SHOWN ? `latest ${RUNS_SHOWN}` : runs.length) : ""}</span>
      </h2>
      {error && <p className="msg-error">Could not load the runs: {error}</p>}
      {runs && !runs.length && <p className="muted">No run yet.</p>}
      {!!runs?.length && (
        <div className="scroll-x">
          <table className="runs thread-runs" aria-labelledby="h-runs">
            <thead>
              <tr>
                <th scope="col">Run</th>
                <th scope="col">Status</th>
                <th scope="col">Created</th>
                <th scope="col">Updated</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr key={r.run_id} data-run={r.run_id} aria-current={r.run_id === latest ? "true" : undefined}>
                  <td className="mono" title={r.run_id}>
                    {r.run_id.slice(0, 8)}
                  </td>
                  <td>
                    <StatusBadge status={r.status} />
                  </td>
                  <td title={r.created_at}>{fmtTime(r.created_at)}</td>
                  <td title={r.updated_at}>{fmtTime(r.updated_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function mergeCheckpoints(known: Checkpoint[], more: Checkpoint[]): Checkpoint[] {
  const byId = new Map(known.map((c) => [c.checkpoint_id, c]));
  for (const c of more) byId.set(c.checkpoint_id, { ...byId.get(c.checkpoint_id), ...c });
  return [...byId.values()].sort((a, b) => Number(a.metadata.step ?? 0) - Number(b.metadata.step ?? 0));
}

function RunView({ threadId }: { threadId: string }) {
  const [run, setRun] = useState<RunState | null>(null);
  const [loadError, setLoadError] = useState<ApiError | null>(null);
  const [checkpoints, setCheckpoints] = useState<Checkpoint[]>([]);
  // The thread's runs (newest first); null until loaded, or when this server does not list them.
  const [runs, setRuns] = useState<ThreadRun[] | null>(null);
  const [runsError, setRunsError] = useState("");
  const [notices, setNotices] = useState<(Notice & { id: number })[]>([]);
  const [confirmCancel, setConfirmCancel] = useState(false);
  // The `approval` event can beat the POST's answer: hold events for an interrupt this page is
  // deciding until the answer says whether they are its own decision.
  const ours = useRef(new Set<string>()); // decided_at of this page's decisions
  const held = useRef(new Map<string, Decision[]>());
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  const feed = useLogFeed(threadId);
  const say = (n: Notice) => setNotices((prev) => [...prev.slice(-2), { ...n, id: Date.now() + Math.random() }]);

  const refreshRuns = useCallback(async () => {
    try {
      setRuns(await api.threadRuns(threadId, RUNS_SHOWN));
      setRunsError("");
    } catch (err) {
      const e = err as ApiError;
      setRunsError(e.status === 404 ? "" : e.message); // 404: not yet a run the Agent API knows
    }
  }, [threadId]);
  const refresh = useCallback(async () => {
    void refreshRuns();
    try {
      const [state, history] = await Promise.all([api.status(threadId), api.history(threadId, 200)]);
      setRun(state);
      setCheckpoints((prev) => mergeCheckpoints(prev, history.checkpoints));
      setLoadError(null);
    } catch (err) {
      setLoadError(err as ApiError);
    }
  }, [threadId, refreshRuns]);
  const refreshSoon = () => {
    clearTimeout(timer.current);
    timer.current = setTimeout(refresh, 150);
  };
  useEffect(() => {
    void refresh();
    return () => clearTimeout(timer.current);
  }, [refresh]);

  useAdminEvents((event: AdminEvent) => {
    if (event.type === "run_event" && event.data.thread_id === threadId) {
      const { checkpoint_id, metadata } = event.data;
      setCheckpoints((prev) => mergeCheckpoints(prev, [{ checkpoint_id, metadata }]));
      refreshSoon();
    } else if (event.type === "run_status" && event.data.thread_id === threadId) {
      const d = event.data;
      setRun((prev) => prev && { ...prev, status: d.status, pending: d.pending ?? [], error: d.error ?? prev.error });
      refreshSoon();
    } else if (event.type === "approval") {
      const d = event.data;
      const waiting = held.current.get(d.interrupt_id);
      if (waiting) waiting.push(d);
      else if (run?.pending.some((p) => p.interrupt_id === d.interrupt_id) && !ours.current.has(d.decided_at)) decidedElsewhere(d);
    }
  }, refresh);

  const decidedElsewhere = (d: Decision) => {
    const by = d.decided_by ? ` by ${d.decided_by}` : "";
    const said = d.comment ? `: “${d.comment}”` : "";
    const did = d.decision === "approve" ? "approved" : d.decision === "reject" ? "rejected" : d.decision === "resume" ? "answered" : "cancelled";
    say({ kind: "info", text: `Someone else ${did} this${by}${said}.` });
  };
  const sending = (interruptId: string) => held.current.set(interruptId, []);
  const decided = (n: Notice, interruptId: string, decision?: Decision) => {
    if (decision) ours.current.add(decision.decided_at);
    const events = held.current.get(interruptId) ?? [];
    held.current.delete(interruptId);
    events.filter((d) => d.decided_at !== decision?.decided_at).forEach(decidedElsewhere);
    say(n);
    void refresh();
  };

  const cancel = async () => {
    setConfirmCancel(false);
    try {
      await api.cancel(threadId);
      say({ kind: "ok", text: "Run cancelled." });
    } catch (err) {
      const e = err as ApiError;
      say({ kind: "error", text: e.status === 409 ? `Not cancelled: ${e.message}.` : `Cancel failed: ${e.message}` });
    }
    void refresh();
  };

  if (loadError && !run) {
    return (
      <>
        <p className="msg-error" role="alert">
          {loadError.status === 404 ? `No run with id “${threadId}”.` : `Could not load the run: ${loadError.message}`}
        </p>
        <Link href="/">Back to the runs</Link>
      </>
    );
  }
  const active = run?.status === "running" || run?.status === "waiting_approval";

  return (
    <>
      <p className="crumbs">
        <Link href="/">Runs</Link> / <span className="mono">{shortId(threadId)}</span>
      </p>
      <div className="runhead">
        <h1>
          {run?.workflow ?? "Run"} <span className="mono small">{threadId}</span>
        </h1>
        {run && <StatusBadge status={run.status} />}
        {active &&
          (confirmCancel ? (
            <span className="confirm" role="group" aria-label="Confirm cancel">
              Cancel this run?{" "}
              <button className="reject" onClick={cancel} autoFocus>
                Yes, cancel run
              </button>{" "}
              <button onClick={() => setConfirmCancel(false)}>Keep running</button>
            </span>
          ) : (
            <button onClick={() => setConfirmCancel(true)}>Cancel run…</button>
          ))}
      </div>
      <div className="notices" aria-live="polite">
        {notices.map((n) => (
          <p key={n.id} className={`notice n-${n.kind}`}>
            {n.text}{" "}
            <button className="link" onClick={() => setNotices((prev) => prev.filter((x) => x !== n))} aria-label="Dismiss message">
              ×
            </button>
          </p>
        ))}
      </div>
      {loadError && <p className="msg-error">Could not refresh: {loadError.message}</p>}
      {run?.error && <p className="msg-error">Error: {run.error}</p>}
      {run?.status === "waiting_approval" &&
        run.pending.map((p) => <ApprovalPanel key={p.interrupt_id} threadId={threadId} pending={p} onSending={sending} onDecided={decided} />)}
      <div className="detail">
        <LogView feed={feed} />
        <aside>
          <ThreadRuns runs={runs} error={runsError} latest={run?.run_id ?? null} />
          <section aria-labelledby="h-timeline">
            <h2 id="h-timeline">Checkpoints</h2>
            <ol className="timeline" reversed>
              {[...checkpoints].reverse().map((c) => (
                <li key={c.checkpoint_id}>
                  <strong>step {String(c.metadata.step ?? "?")}</strong> · {String(c.metadata.source ?? "")}
                  {c.next?.length ? ` → ${c.next.join(", ")}` : c.next ? " → end" : ""}
                  <span className="muted small">
                    {" "}
                    {c.created_at ? fmtTime(c.created_at) : ""} <span className="mono">{c.checkpoint_id.slice(-12)}</span>
                  </span>
                </li>
              ))}
            </ol>
            {!checkpoints.length && <p className="muted">No checkpoint yet.</p>}
          </section>
          <section aria-labelledby="h-state">
            <h2 id="h-state">State</h2>
            <pre className="json state">{run ? pretty(run.values) : "…"}</pre>
            {run && (
              <p className="muted small">
                next: {run.next.join(", ") || "—"} · started {fmtTime(run.created_at)} · updated {fmtTime(run.updated_at)}
              </p>
            )}
          </section>
          {!!run?.decisions.length && (
            <section aria-labelledby="h-decisions">
              <h2 id="h-decisions">Decisions</h2>
              <ul className="decisions">
                {run.decisions.map((d) => (
                  <li key={d.interrupt_id + d.decided_at}>
                    <strong>{DECIDED[d.decision] ?? d.decision}</strong> {fmtTime(d.decided_at)}
                    {d.decided_by && ` by ${d.decided_by}`}
                    {d.comment && <q>{d.comment}</q>}
                    {d.decision === "resume" && <code className="small resume-data">{resumeSummary(d.data)}</code>}
                  </li>
                ))}
              </ul>
            </section>
          )}
        </aside>
      </div>
    </>
  );
}
