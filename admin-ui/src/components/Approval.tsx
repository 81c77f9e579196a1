"use client";
// The pending approval: what is asked, a comment, Approve / Reject, and a confirmation step.
import { useEffect, useRef, useState } from "react";
import { ApiError, type Decision, type Pending, api } from "@/lib/api";
import { fmtDuration, fmtTime, pretty } from "@/lib/format";

export type Notice = { kind: "ok" | "error" | "info"; text: string };
type Choice = "approve" | "reject";

function Value({ value }: { value: unknown }) {
  if (value === null || ["string", "number", "boolean"].includes(typeof value)) return <>{String(value)}</>;
  if (Array.isArray(value) && value.every((x) => typeof x === "string")) {
    return (
      <ul className="plain">
        {value.map((x, i) => (
          <li key={i}>{x}</li>
        ))}
      </ul>
    );
  }
  return <pre className="json">{pretty(value)}</pre>;
}

function PendingValue({ value }: { value: unknown }) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return <pre className="json">{pretty(value)}</pre>;
  const { question, ...rest } = value as Record<string, unknown>;
  return (
    <>
      {typeof question === "string" && <p className="question">{question}</p>}
      <dl className="fields">
        {Object.entries(rest).map(([key, v]) => (
          <div key={key}>
            <dt>{key}</dt>
            <dd>
              <Value value={v} />
            </dd>
          </div>
        ))}
      </dl>
    </>
  );
}

// When nobody decides: the default action and a countdown to the deadline (from /status).
function DeadlineNote({ deadline, action }: { deadline: string; action: string }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const left = (Date.parse(deadline) - now) / 1000;
  return (
    <p className="deadline-note" data-testid="deadline-note" title={deadline}>
      If nobody decides, <span className={`badge da-${action}`}>{action}</span> applies at {fmtTime(deadline)}
      {left > 0 ? ` (in ${fmtDuration(left)})` : " (now)"}.
    </p>
  );
}

export function ApprovalPanel(props: {
  threadId: string;
  pending: Pending;
  onSending: (interruptId: string) => void;
  onDecided: (notice: Notice, interruptId: string, decision?: Decision) => void;
}) {
  const { threadId, pending, onSending, onDecided } = props;
  const [comment, setComment] = useState("");
  const [choice, setChoice] = useState<Choice | null>(null);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => confirmRef.current?.focus(), [choice]);

  const decide = async (decision: Choice) => {
    setBusy(true);
    onSending(pending.interrupt_id);
    try {
      const answer = await api.approve(threadId, decision, comment.trim(), pending.interrupt_id);
      onDecided(
        { kind: "ok", text: decision === "approve" ? "Approved — the run continues." : "Rejected — the run continues with your comment." },
        pending.interrupt_id,
        answer.decision,
      );
    } catch (err) {
      const e = err as ApiError;
      const text =
        e.status === 409
          ? `Not recorded: someone else already decided this approval (${e.message}).`
          : e.status === 422
            ? `Not recorded: ${e.message} ${pretty(e.details)}`
            : `Not recorded: ${e.message}. Nothing was changed; try again.`;
      onDecided({ kind: "error", text }, pending.interrupt_id);
    } finally {
      setBusy(false);
      setChoice(null);
    }
  };

  const commentId = `comment-${pending.interrupt_id}`;
  return (
    <section className="approval" aria-labelledby={`h-${pending.interrupt_id}`}>
      <h2 id={`h-${pending.interrupt_id}`}>Waiting for approval</h2>
      <PendingValue value={pending.value} />
      {pending.deadline && pending.default_action && (
        <DeadlineNote deadline={pending.deadline} action={pending.default_action} />
      )}
      <label htmlFor={commentId}>Comment (optional, recorded with your decision)</label>
      <textarea id={commentId} value={comment} onChange={(e) => setComment(e.target.value)} rows={2} maxLength={4000} disabled={busy} />
      {choice === null ? (
        <div className="actions">
          <button className="approve" onClick={() => setChoice("approve")} disabled={busy}>
            Approve…
          </button>
          <button className="reject" onClick={() => setChoice("reject")} disabled={busy}>
            Reject…
          </button>
        </div>
      ) : (
        <div className="actions confirm" role="group" aria-label="Confirm decision">
          <span>
            {choice === "approve" ? "Approve" : "Reject"} this {comment.trim() ? "with your comment" : "without a comment"}?
          </span>
          <button ref={confirmRef} className={choice} onClick={() => decide(choice)} disabled={busy}>
            {busy ? "Sending…" : choice === "approve" ? "Yes, approve" : "Yes, reject"}
          </button>
          <button onClick={() => setChoice(null)} disabled={busy}>
            Back
          </button>
        </div>
      )}
    </section>
  );
}
