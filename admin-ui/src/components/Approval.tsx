"use client";
// A pending interrupt and how to answer it, by the shape of its value:
// - Beacon's own approval request: what is asked, a comment, Approve / Reject, a confirmation step;
// - LangChain's HumanInTheLoopMiddleware request: each tool call with the decisions its review
//   config allows (approve, edit the arguments, reject with a message, respond), sent together;
// - anything else: a JSON editor whose value reaches the graph's interrupt() as sent.
// The JSON editor is offered beside the first two as well, as an advanced option.
import { useEffect, useId, useMemo, useRef, useState } from "react";
import { ApiError, type Decision, type Pending, api } from "@/lib/api";
import { fmtDuration, fmtTime, pretty } from "@/lib/format";
import {
  type HitlDecision,
  type HitlDecisionType,
  type HitlRequest,
  allowedFor,
  argsSchemaFor,
  asHitl,
  interruptKind,
  parseArgs,
  parseJson,
} from "@/lib/interrupts";

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

function Fields({ value }: { value: Record<string, unknown> }) {
  const entries = Object.entries(value);
  if (!entries.length) return <p className="muted small">(no arguments)</p>;
  return (
    <dl className="fields">
      {entries.map(([key, v]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>
            <Value value={v} />
          </dd>
        </div>
      ))}
    </dl>
  );
}

function PendingValue({ value }: { value: unknown }) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return <pre className="json">{pretty(value)}</pre>;
  const { question, ...rest } = value as Record<string, unknown>;
  return (
    <>
      {typeof question === "string" && <p className="question">{question}</p>}
      <Fields value={rest} />
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

/** Why the server did not take an answer, in words: stale (409), decided elsewhere (409), invalid (422). */
function failureText(e: ApiError): string {
  if (e.status === 409 && e.code === "stale_interrupt") {
    return `Not recorded: someone else already decided this approval, or the run moved on: it is no longer pending (${e.message}).`;
  }
  if (e.status === 409) return `Not recorded: someone else already decided this approval (${e.message}).`;
  if (e.status === 422) {
    const details = e.details && Object.keys(e.details).length ? ` ${pretty(e.details)}` : "";
    return `Not recorded: the server refused the answer: ${e.message}${details}`;
  }
  return `Not recorded: ${e.message}. Nothing was changed; try again.`;
}

type PanelProps = {
  threadId: string;
  pending: Pending;
  onSending: (interruptId: string) => void;
  onDecided: (notice: Notice, interruptId: string, decision?: Decision) => void;
};
type Sender = { busy: boolean; send: (call: () => Promise<{ decision: Decision }>, ok: string) => Promise<boolean> };

/** One answer at a time per panel: tells the page which interrupt is being decided, and how it went. */
function useSender({ pending, onSending, onDecided }: PanelProps): Sender {
  const [busy, setBusy] = useState(false);
  const send = async (call: () => Promise<{ decision: Decision }>, ok: string) => {
    setBusy(true);
    onSending(pending.interrupt_id);
    try {
      const answer = await call();
      onDecided({ kind: "ok", text: ok }, pending.interrupt_id, answer.decision);
      return true;
    } catch (err) {
      onDecided({ kind: "error", text: failureText(err as ApiError) }, pending.interrupt_id);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { busy, send };
}

/** The confirmation step every answer goes through: the question, Yes (focused) and Back. */
function Confirm(props: { label: string; question: string; yes: string; yesClass?: string; busy: boolean; onYes: () => void; onBack: () => void }) {
  const ref = useRef<HTMLButtonElement>(null);
  useEffect(() => ref.current?.focus(), []);
  return (
    <div className="actions confirm" role="group" aria-label={props.label}>
      <span>{props.question}</span>
      <button ref={ref} className={props.yesClass} onClick={props.onYes} disabled={props.busy}>
        {props.busy ? "Sending…" : props.yes}
      </button>
      <button onClick={props.onBack} disabled={props.busy}>
        Back
      </button>
    </div>
  );
}

export function ApprovalPanel(props: PanelProps) {
  const { pending } = props;
  const sender = useSender(props);
  const kind = interruptKind(pending);
  const hitl = kind === "hitl" ? asHitl(pending.value) : null;
  const [rawOpen, setRawOpen] = useState(false);
  const headingId = `h-${pending.interrupt_id}`;
  const rawId = `raw-${pending.interrupt_id}`;
  const heading = kind === "beacon" ? "Waiting for approval" : kind === "hitl" ? "Waiting for review" : "Waiting for input";

  return (
    <section className={`approval approval-${kind}`} aria-labelledby={headingId} data-interrupt={pending.interrupt_id}>
      <h2 id={headingId}>{heading}</h2>
      {kind === "beacon" && <PendingValue value={pending.value} />}
      {pending.deadline && pending.default_action && <DeadlineNote deadline={pending.deadline} action={pending.default_action} />}
      {kind === "beacon" && <BeaconForm {...props} sender={sender} />}
      {hitl && <HitlReview {...props} request={hitl} sender={sender} />}
      {kind === "raw" ? (
        <>
          <p className="muted small">
            This interrupt asks in its own shape. Reply with the JSON value the workflow expects: it reaches the graph&apos;s{" "}
            <code>interrupt()</code> as you send it.
          </p>
          <PendingValue value={pending.value} />
          <JsonReply {...props} sender={sender} />
        </>
      ) : (
        <div className="advanced">
          <button className="link small" aria-expanded={rawOpen} aria-controls={rawId} onClick={() => setRawOpen(!rawOpen)}>
            Reply with JSON…
          </button>
          <div id={rawId} hidden={!rawOpen}>
            {rawOpen && <JsonReply {...props} sender={sender} />}
          </div>
        </div>
      )}
    </section>
  );
}

/** Beacon's own request: approve or reject, with an optional comment. */
function BeaconForm({ threadId, pending, sender }: PanelProps & { sender: Sender }) {
  const [comment, setComment] = useState("");
  const [choice, setChoice] = useState<Choice | null>(null);
  const { busy } = sender;

  const decide = async (decision: Choice) => {
    await sender.send(
      () => api.approve(threadId, decision, comment.trim(), pending.interrupt_id),
      decision === "approve" ? "Approved — the run continues." : "Rejected — the run continues with your comment.",
    );
    setChoice(null);
  };

  const commentId = `comment-${pending.interrupt_id}`;
  return (
    <>
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
        <Confirm
          label="Confirm decision"
          question={`${choice === "approve" ? "Approve" : "Reject"} this ${comment.trim() ? "with your comment" : "without a comment"}?`}
          yes={choice === "approve" ? "Yes, approve" : "Yes, reject"}
          yesClass={choice}
          busy={busy}
          onYes={() => decide(choice)}
          onBack={() => setChoice(null)}
        />
      )}
    </>
  );
}

/** Any JSON value as the resume value, validated as you type. */
function JsonReply({ threadId, pending, sender }: PanelProps & { sender: Sender }) {
  const [text, setText] = useState("");
  const [confirming, setConfirming] = useState(false);
  const parsed = useMemo(() => parseJson(text), [text]);
  const { busy } = sender;
  const id = useId();
  const shown = text.trim() ? parsed.error : undefined; // no complaint about an editor not typed in yet

  const send = async () => {
    if (parsed.error !== undefined) return;
    await sender.send(() => api.resume(threadId, parsed.value, pending.interrupt_id), "Reply sent — the run continues.");
    setConfirming(false);
  };

  return (
    <div className="json-reply">
      <label htmlFor={`${id}-text`}>Resume value (JSON)</label>
      <textarea
        id={`${id}-text`}
        className="mono"
        rows={5}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setConfirming(false);
        }}
        placeholder={'{"decision": "approve"}'}
        spellCheck={false}
        disabled={busy}
        aria-invalid={!!shown}
        aria-describedby={`${id}-errors`}
      />
      <ul id={`${id}-errors`} className="field-errors" aria-live="polite">
        {shown && <li>{shown}</li>}
      </ul>
      {confirming ? (
        <Confirm
          label="Confirm reply"
          question="Send this value to the workflow?"
          yes="Yes, send reply"
          yesClass="primary"
          busy={busy}
          onYes={send}
          onBack={() => setConfirming(false)}
        />
      ) : (
        <div className="actions">
          <button className="primary" onClick={() => setConfirming(true)} disabled={busy || parsed.error !== undefined}>
            Send reply…
          </button>
        </div>
      )}
    </div>
  );
}

type Draft = { type: HitlDecisionType | null; args: string; message: string };

const DECISION_LABEL: Record<HitlDecisionType, string> = { approve: "Approve", edit: "Edit", reject: "Reject", respond: "Respond" };
const DECISION_CLASS: Record<HitlDecisionType, string> = { approve: "approve", edit: "", reject: "reject", respond: "" };

/** A draft as the middleware's decision, or why it cannot be one yet. */
function toDecision(request: HitlRequest, index: number, draft: Draft): { decision?: HitlDecision; error?: string } {
  const action = request.action_requests[index];
  switch (draft.type) {
    case null:
      return { error: "Choose a decision." };
    case "approve":
      return { decision: { type: "approve" } };
    case "edit": {
      const args = parseArgs(draft.args, argsSchemaFor(request, index));
      if (args.error !== undefined) return { error: args.error };
      return { decision: { type: "edit", edited_action: { name: action.name, args: args.value } } };
    }
    case "reject":
      return { decision: draft.message.trim() ? { type: "reject", message: draft.message.trim() } : { type: "reject" } };
    case "respond":
      return draft.message.trim() ? { decision: { type: "respond", message: draft.message.trim() } } : { error: "Write the response the agent gets." };
  }
}

/** HumanInTheLoopMiddleware: each tool call, its allowed decisions, then one answer for all of them. */
function HitlReview({ threadId, pending, request, sender }: PanelProps & { request: HitlRequest; sender: Sender }) {
  const actions = request.action_requests;
  const [drafts, setDrafts] = useState<Draft[]>(() => actions.map((a) => ({ type: null, args: pretty(a.args), message: "" })));
  const [confirming, setConfirming] = useState(false);
  const { busy } = sender;
  const base = `hitl-${pending.interrupt_id}`;

  const results = actions.map((_, i) => toDecision(request, i, drafts[i]));
  const ready = results.every((r) => r.decision);
  const left = drafts.filter((d) => d.type === null).length;
  const update = (i: number, change: Partial<Draft>) => {
    setConfirming(false);
    setDrafts((prev) => prev.map((d, j) => (j === i ? { ...d, ...change } : d)));
  };

  const send = async () => {
    if (!ready) return;
    const decisions = results.map((r) => r.decision!);
    await sender.send(() => api.resume(threadId, { decisions }, pending.interrupt_id), "Decisions sent — the run continues.");
    setConfirming(false);
  };

  const n = actions.length;
  const plan = results.map((r, i) => `${r.decision?.type ?? "?"} ${actions[i].name}`).join(", ");
  return (
    <>
      <p className="question">
        The agent wants to call {n === 1 ? "a tool" : `${n} tools`}. Review {n === 1 ? "it" : "each"} before it runs.
      </p>
      <ol className="hitl-actions">
        {actions.map((action, i) => {
          const allowed = allowedFor(request, i);
          const draft = drafts[i];
          const result = results[i];
          const id = `${base}-${i}`;
          return (
            <li key={i}>
              <fieldset className="hitl-action" data-action={action.name} data-decision={draft.type ?? ""}>
                <legend>
                  Tool call {i + 1} of {n}: <code>{action.name}</code>
                </legend>
                {action.description && <p className="hitl-description">{action.description}</p>}
                <h3 className="small muted">Arguments</h3>
                <Fields value={action.args} />
                <div className="actions" role="group" aria-label={`Decision for ${action.name}`}>
                  {allowed.map((type) => (
                    <button
                      key={type}
                      className={draft.type === type ? DECISION_CLASS[type] || "chosen" : ""}
                      aria-pressed={draft.type === type}
                      onClick={() => update(i, { type })}
                      disabled={busy}
                    >
                      {DECISION_LABEL[type]}
                    </button>
                  ))}
                </div>
                {draft.type === "edit" && (
                  <>
                    <label htmlFor={`${id}-args`}>Arguments for {action.name} (JSON)</label>
                    <textarea
                      id={`${id}-args`}
                      className="mono"
                      rows={Math.min(12, Math.max(3, draft.args.split("\n").length))}
                      value={draft.args}
                      onChange={(e) => update(i, { args: e.target.value })}
                      spellCheck={false}
                      disabled={busy}
                      aria-invalid={!!result.error}
                      aria-describedby={`${id}-errors`}
                    />
                  </>
                )}
                {(draft.type === "reject" || draft.type === "respond") && (
                  <>
                    <label htmlFor={`${id}-message`}>
                      {draft.type === "reject" ? "Message to the agent (optional)" : "Response to the agent, in place of the tool's result"}
                    </label>
                    <textarea
                      id={`${id}-message`}
                      rows={2}
                      maxLength={4000}
                      value={draft.message}
                      onChange={(e) => update(i, { message: e.target.value })}
                      disabled={busy}
                      aria-describedby={`${id}-errors`}
                    />
                  </>
                )}
                <ul id={`${id}-errors`} className="field-errors" aria-live="polite">
                  {draft.type !== null && result.error && <li>{result.error}</li>}
                </ul>
              </fieldset>
            </li>
          );
        })}
      </ol>
      {confirming && ready ? (
        <Confirm
          label="Confirm decisions"
          question={`Send ${n === 1 ? "this decision" : `these ${n} decisions`}: ${plan}?`}
          yes="Yes, send decisions"
          yesClass="primary"
          busy={busy}
          onYes={send}
          onBack={() => setConfirming(false)}
        />
      ) : (
        <div className="actions">
          <button className="primary" onClick={() => setConfirming(true)} disabled={busy || !ready} aria-describedby={`${base}-hint`}>
            Send decisions…
          </button>
          <span id={`${base}-hint`} className="muted small">
            {left ? `Choose a decision for ${n === 1 ? "the tool call" : `every tool call (${left} of ${n} left)`}.` : ready ? "" : "Fix the errors above."}
          </span>
        </div>
      )}
    </>
  );
}
