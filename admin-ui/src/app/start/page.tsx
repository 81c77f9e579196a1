"use client";
// Start a run: pick a workflow, edit its input as JSON; the server's 422 messages show by the field.
import { useRouter } from "next/navigation";
import { type FormEvent, useEffect, useMemo, useState } from "react";
import { ApiError, type JsonSchema, type Workflow, api } from "@/lib/api";
import { pretty } from "@/lib/format";

/** An input to start from: every field with its default, required ones empty. */
function example(schema?: JsonSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(schema?.properties ?? {})) {
    if ("default" in prop) out[name] = prop.default;
    else if (schema?.required?.includes(name)) out[name] = prop.type === "string" ? "" : null;
  }
  return out;
}

type Errors = { form?: string; input?: string[]; thread_id?: string[]; fields?: Record<string, string[]> };

/** 422 details → messages per field: {"input": {"topic": ["…"]}, "thread_id": ["…"]}. */
function fieldErrors(details: Record<string, unknown>): Errors {
  const errors: Errors = {};
  const input = details.input;
  if (Array.isArray(input)) errors.input = input.map(String);
  else if (input && typeof input === "object") {
    errors.fields = Object.fromEntries(
      Object.entries(input).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : [pretty(v)]]),
    );
  }
  if (Array.isArray(details.thread_id)) errors.thread_id = details.thread_id.map(String);
  return errors;
}

export default function StartPage() {
  const router = useRouter();
  const [workflows, setWorkflows] = useState<Workflow[] | null>(null);
  const [name, setName] = useState("");
  const [text, setText] = useState("{}");
  const [threadId, setThreadId] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api.workflows().then(
      ({ workflows }) => {
        setWorkflows(workflows);
        const first = workflows.find((w) => w.name === "review") ?? workflows[0];
        if (first) choose(first);
      },
      (err: ApiError) => setErrors({ form: `Could not load workflows: ${err.message}` }),
    );
  }, []);

  const workflow = useMemo(() => workflows?.find((w) => w.name === name), [workflows, name]);
  const choose = (w: Workflow) => {
    setName(w.name);
    setText(pretty(example(w.input_schema)));
    setErrors({});
  };

  const parsed = useMemo(() => {
    try {
      const value = JSON.parse(text);
      if (!value || typeof value !== "object" || Array.isArray(value)) return { error: "The input must be a JSON object: { … }." };
      return { value: value as Record<string, unknown> };
    } catch (err) {
      return { error: `Not valid JSON: ${(err as Error).message}` };
    }
  }, [text]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (parsed.error || !name) return;
    setBusy(true);
    setErrors({});
    try {
      const run = await api.start(name, parsed.value!, threadId.trim() || undefined);
      router.push(`/run/?id=${encodeURIComponent(run.thread_id)}`);
    } catch (err) {
      const e = err as ApiError;
      setErrors({ ...(e.status === 422 ? fieldErrors(e.details) : {}), form: `${e.message} (HTTP ${e.status || "—"})` });
      setBusy(false);
    }
  };

  const inputMessages = [
    ...(parsed.error ? [parsed.error] : []),
    ...(errors.input ?? []),
    ...Object.entries(errors.fields ?? {}).flatMap(([field, msgs]) => msgs.map((m) => `${field}: ${m}`)),
  ];
  const props = Object.entries(workflow?.input_schema?.properties ?? {});

  return (
    <>
      <h1>Start a run</h1>
      <form onSubmit={submit} className="start" noValidate>
        <label htmlFor="workflow">Workflow</label>
        <select id="workflow" value={name} onChange={(e) => workflows && choose(workflows.find((w) => w.name === e.target.value)!)}>
          {!workflows && <option>loading…</option>}
          {workflows?.map((w) => (
            <option key={w.name} value={w.name}>
              {w.name}
            </option>
          ))}
        </select>
        {workflow?.description && <p className="muted">{workflow.description}</p>}

        <label htmlFor="input">Input (JSON)</label>
        <textarea
          id="input"
          className="mono"
          rows={8}
          value={text}
          onChange={(e) => setText(e.target.value)}
          aria-invalid={inputMessages.length > 0}
          aria-describedby="input-help input-errors"
          spellCheck={false}
        />
        <ul id="input-errors" className="field-errors" aria-live="polite">
          {inputMessages.map((m) => (
            <li key={m}>{m}</li>
          ))}
        </ul>
        {!!props.length && (
          <p id="input-help" className="muted small">
            Fields:{" "}
            {props
              .map(([k, p]) => `${k} (${p.type ?? "any"}${workflow?.input_schema?.required?.includes(k) ? ", required" : ""})`)
              .join(" · ")}
          </p>
        )}

        <label htmlFor="thread">Thread id (optional)</label>
        <input id="thread" className="mono" value={threadId} onChange={(e) => setThreadId(e.target.value)} placeholder="generated when empty" aria-describedby="thread-errors" aria-invalid={!!errors.thread_id} />
        <ul id="thread-errors" className="field-errors">
          {errors.thread_id?.map((m) => <li key={m}>{m}</li>)}
        </ul>

        {errors.form && (
          <p className="msg-error" role="alert">
            {errors.form}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || !!parsed.error || !name}>
          {busy ? "Starting…" : "Start run"}
        </button>
      </form>
    </>
  );
}
