"use client";
import type { RunStatus } from "@/lib/api";
import { useConnection } from "@/lib/hooks";

const LABELS: Record<RunStatus, string> = {
  running: "running",
  waiting_approval: "waiting for approval",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
  idle: "idle",
};

// A thread's runs (LangGraph's statuses) read as themselves: pending, running, success, error,
// interrupted, timeout; "running" looks the same in both.
export const statusLabel = (status: string) => LABELS[status as RunStatus] ?? status;

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge st-${status}`} data-status={status}>
      {statusLabel(status)}
    </span>
  );
}

const CONN = {
  connecting: "connecting…",
  connected: "live",
  reconnecting: "reconnecting…",
  offline: "offline",
};

/** The realtime connection as the user should read it: live, reconnecting or offline. */
export function ConnectionBadge() {
  const state = useConnection();
  return (
    <span className={`conn conn-${state}`} data-state={state} role="status" aria-live="polite" title="Realtime connection">
      <span className="dot" aria-hidden="true" />
      {CONN[state]}
    </span>
  );
}
