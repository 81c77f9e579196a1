// Beacon's REST client and its two Socket.IO clients (`/logs`, `/admin`), one of each per page load.
//
// Bases: NEXT_PUBLIC_API_BASE / NEXT_PUBLIC_SOCKETIO_BASE when set at build time; otherwise the REST
// API is the page's own origin (the REST server or nginx serves the UI), and the realtime base comes
// from `?rt=<port>` (same host), then the server's /ui/config.json, then the page's location
// (port 8000 → 7000 on the same host; a default port, as behind nginx, → the same origin).
import { Manager, type Socket } from "socket.io-client";

export const BASE_PATH = "/ui";

// "idle": a thread created (Agent Server API) that has not run yet.
export const STATUSES = ["waiting_approval", "running", "failed", "completed", "cancelled", "idle"] as const;
export type RunStatus = (typeof STATUSES)[number];

export interface Run {
  thread_id: string;
  workflow: string;
  status: RunStatus;
  input?: Record<string, unknown>;
  created_at?: string;
  updated_at?: string;
  error?: string | null;
}
export interface Pending {
  interrupt_id: string;
  value: unknown;
  deadline?: string | null;
  default_action?: "approve" | "reject" | null;
}
export interface Decision {
  interrupt_id: string;
  /** "resume": answered with a resume value of the graph's own shape (kept in `data`). */
  decision: "approve" | "reject" | "cancel" | "resume";
  comment: string | null;
  decided_at: string;
  decided_by: string | null;
  data?: unknown;
}
export interface RunState extends Run {
  next: string[];
  pending: Pending[];
  values: Record<string, unknown>;
  checkpoint_id: string | null;
  decisions: Decision[];
  /** The thread's latest run (LangGraph's model: a thread holds many runs). */
  run_id?: string | null;
}
/** One run on a thread (GET /threads/{thread_id}/runs, the LangGraph Agent Server API). */
export const THREAD_RUN_STATUSES = ["pending", "running", "success", "error", "interrupted", "timeout"] as const;
export type ThreadRunStatus = (typeof THREAD_RUN_STATUSES)[number];
export interface ThreadRun {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  created_at: string;
  updated_at: string;
  status: ThreadRunStatus;
  metadata: Record<string, unknown>;
  multitask_strategy: string | null;
}
export interface RunsPage {
  runs: Run[];
  total: number;
  next_cursor: string | null;
  counts: Partial<Record<RunStatus, number>>;
}
/** A pending approval in the queue (GET /admin/approvals). */
export interface Approval {
  thread_id: string;
  workflow: string;
  interrupt_id: string;
  value: unknown;
  waiting_since: string;
  deadline: string | null;
  default_action: "approve" | "reject" | null;
  seconds_left: number | null;
}
export interface ApprovalsPage {
  approvals: Approval[];
  total: number;
  next_cursor: string | null;
}
export interface Checkpoint {
  checkpoint_id: string;
  parent_checkpoint_id?: string | null;
  created_at?: string | null;
  metadata: Record<string, unknown>;
  next?: string[];
}
export interface LogLine {
  text: string;
  thread_id: string;
  level: string;
  timestamp: string;
  seq: number;
}
export interface LogsPage {
  lines: LogLine[];
  last_seq: number;
  next_after: number | null;
}
export interface Workflow {
  name: string;
  description?: string;
  input_schema?: JsonSchema;
}
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema & { default?: unknown; enum?: unknown[]; description?: string }>;
  required?: string[];
}
export type AdminEvent =
  | { type: "run_event"; data: { thread_id: string; checkpoint_id: string; metadata: Record<string, unknown> } }
  | {
      type: "run_status";
      data: {
        thread_id: string;
        workflow: string;
        status: RunStatus;
        at: string;
        event?: string;
        pending?: Pending[];
        error?: string;
        run_id?: string;
      };
    }
  | { type: "approval"; data: Decision };
export interface SubscribeAck {
  thread_id?: string;
  recovered?: boolean;
  last_seq?: number;
  replayed?: number;
  error?: string;
}
export type Json = Record<string, unknown>;

/** A failed request: the server's `{error, message, details, request_id}`, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Json = {},
    readonly requestId = "",
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, "");
const browser = () => typeof window !== "undefined";

export function apiBase(): string {
  const env = process.env.NEXT_PUBLIC_API_BASE;
  if (env) return trimSlash(env);
  if (!browser()) return "";
  const { protocol, hostname, port, origin } = window.location;
  return port === "3000" ? `${protocol}//${hostname}:8000` : origin; // `next dev` beside a local Beacon
}

const TOKEN_KEY = "beacon.token";

/** The bearer token: `?token=` in the URL (then dropped from the address bar), else this tab's sessionStorage. */
export function authToken(): string | null {
  if (!browser()) return null;
  const url = new URL(window.location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl);
    url.searchParams.delete("token");
    window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setAuthToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** Send the browser to the login page, coming back here afterwards. */
export function toLogin(reason: string): void {
  if (window.location.pathname.startsWith(`${BASE_PATH}/login`)) return;
  const next = window.location.pathname + window.location.search;
  window.location.assign(`${BASE_PATH}/login/?reason=${encodeURIComponent(reason)}&next=${encodeURIComponent(next)}`);
}

async function call<T>(method: string, path: string, body?: unknown, base = apiBase()): Promise<T> {
  let resp: Response;
  const token = authToken();
  const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
  // Only the REST API takes the token; the realtime /health and /stats are public (no CORS preflight).
  if (token && base === apiBase()) headers.Authorization = `Bearer ${token}`;
  try {
    resp = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach ${base || "the server"}: ${(err as Error).message}`);
  }
  const data = await resp.json().catch(() => null);
  if (resp.status === 401 && base === apiBase()) toLogin(token ? "unknown or revoked token" : "");
  if (!resp.ok) {
    throw new ApiError(
      resp.status,
      data?.error ?? "http_error",
      data?.message ?? `${resp.status} ${resp.statusText}`,
      data?.details ?? {},
      data?.request_id ?? "",
      data,
    );
  }
  return data as T;
}

const q = (params: Record<string, string | number | undefined | null>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : "";
};
const id = encodeURIComponent;

export const api = {
  start: (workflow: string, input: Json, thread_id?: string) =>
    call<Run>("POST", "/start", { workflow, input, ...(thread_id ? { thread_id } : {}) }),
  status: (threadId: string) => call<RunState>("GET", `/status/${id(threadId)}`),
  approve: (threadId: string, decision: "approve" | "reject", comment: string, interruptId?: string) =>
    call<{ status: string; decision: Decision }>("POST", `/approve/${id(threadId)}`, {
      decision,
      comment: comment || null,
      interrupt_id: interruptId ?? null,
    }),
  /** Answer an interrupt with a value of the graph's own shape: it reaches `interrupt()` as sent. */
  resume: (threadId: string, resume: unknown, interruptId?: string) =>
    call<{ status: string; decision: Decision }>("POST", `/approve/${id(threadId)}`, {
      resume,
      interrupt_id: interruptId ?? null,
    }),
  /** The thread's runs, newest first. */
  threadRuns: (threadId: string, limit = 50, offset = 0) =>
    call<ThreadRun[]>("GET", `/threads/${id(threadId)}/runs${q({ limit, offset })}`),
  cancel: (threadId: string) => call<Run>("POST", `/admin/runs/${id(threadId)}/cancel`),
  runs: (p: { status?: string; workflow?: string; limit?: number; cursor?: string | null }) =>
    call<RunsPage>("GET", `/admin/runs${q(p)}`),
  history: (threadId: string, limit = 100) =>
    call<{ checkpoints: Checkpoint[] }>("GET", `/admin/runs/${id(threadId)}/history${q({ limit })}`),
  logs: (threadId: string, after: number, limit = 5000) =>
    call<LogsPage>("GET", `/admin/runs/${id(threadId)}/logs${q({ after, limit })}`),
  workflows: () => call<{ workflows: Workflow[] }>("GET", "/admin/workflows"),
  approvals: (p: { workflow?: string; limit?: number; cursor?: string | null }) =>
    call<ApprovalsPage>("GET", `/admin/approvals${q(p)}`),
  stats: () => call<Json>("GET", "/admin/stats"),
  health: () => call<Json>("GET", "/health"),
  realtimeHealth: async () => call<Json>("GET", "/health", undefined, await realtimeBase()),
  realtimeStats: async () => call<Json>("GET", "/stats", undefined, await realtimeBase()),
};

// ---- Socket.IO ------------------------------------------------------------------------------

/** `?rt=` takes a port only (same host), so a link cannot point the console at another server. */
function rtOverride(): string | null {
  const fromQuery = new URLSearchParams(window.location.search).get("rt");
  if (fromQuery && /^\d{1,5}$/.test(fromQuery)) sessionStorage.setItem("beacon.rt", fromQuery);
  const port = sessionStorage.getItem("beacon.rt");
  return port ? `${window.location.protocol}//${window.location.hostname}:${port}` : null;
}

let basePromise: Promise<string> | null = null;

/** The realtime server's base URL (origin plus an optional path prefix), resolved once. */
export function realtimeBase(): Promise<string> {
  basePromise ??= (async () => {
    const env = process.env.NEXT_PUBLIC_SOCKETIO_BASE;
    if (env) return trimSlash(env);
    const override = rtOverride();
    if (override) return override;
    try {
      const resp = await fetch(`${BASE_PATH}/config.json`, { cache: "no-store" });
      const cfg = resp.ok ? await resp.json() : null;
      // A proxy may answer {"socketio_base": ""} (same origin); Beacon answers {"socketio_port": N}.
      if (typeof cfg?.socketio_base === "string") return trimSlash(cfg.socketio_base || window.location.origin);
      if (typeof cfg?.socketio_port === "number") return `${window.location.protocol}//${window.location.hostname}:${cfg.socketio_port}`;
    } catch {
      // no config endpoint (a plain static server): derive from the location below
    }
    const { protocol, hostname, port, origin } = window.location;
    return port === "" ? origin : `${protocol}//${hostname}:7000`;
  })();
  return basePromise;
}

export type ConnState = "connecting" | "connected" | "reconnecting" | "offline";

/** One Manager (one Engine.IO connection) carrying both namespaces for the whole app. */
export class Realtime {
  readonly manager: Manager;
  readonly admin: Socket;
  readonly logs: Socket;
  private logUsers = 0;
  private logIdle: ReturnType<typeof setTimeout> | undefined;
  private everConnected = false;
  private attempts = 0;
  private listeners = new Set<() => void>();
  state: ConnState = "connecting";

  constructor(readonly base: string) {
    const url = new URL(base);
    this.manager = new Manager(url.origin, {
      path: `${trimSlash(url.pathname)}/socket.io`,
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    // A function: a reconnect sends the token the tab holds then.
    const auth = (cb: (data: object) => void) => cb({ token: authToken() });
    this.admin = this.manager.socket("/admin", { auth });
    this.logs = this.manager.socket("/logs", { auth });
    for (const socket of [this.admin, this.logs]) {
      socket.on("connect", this.update);
      socket.on("connect_error", this.update);
      socket.on("disconnect", (reason) => {
        // A server-side namespace disconnect is not retried by socket.io-client; we do retry.
        if (reason === "io server disconnect") setTimeout(() => this.wanted(socket) && socket.connect(), 1000);
        this.update();
      });
    }
    this.manager.on("reconnect_attempt", (attempt) => {
      this.attempts = attempt;
      this.update();
    });
    this.manager.on("reconnect", () => (this.attempts = 0));
    window.addEventListener("online", this.update);
    window.addEventListener("offline", this.update);
    this.admin.connect();
  }

  private wanted(socket: Socket): boolean {
    return socket === this.admin || this.logUsers > 0;
  }

  /** Keep `/logs` connected while someone shows a log; it is the firehose otherwise. */
  holdLogs(): () => void {
    this.logUsers += 1;
    clearTimeout(this.logIdle);
    if (!this.logs.active) this.logs.connect();
    this.update();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.logUsers -= 1;
      if (this.logUsers === 0) this.logIdle = setTimeout(() => this.logUsers === 0 && this.logs.disconnect(), 2000);
      this.update();
    };
  }

  private update = () => {
    const sockets = [this.admin, this.logs].filter((s) => this.wanted(s));
    const connected = sockets.every((s) => s.connected);
    if (connected) this.everConnected = true;
    let state: ConnState;
    if (connected) state = "connected";
    else if (!navigator.onLine || this.attempts >= 6) state = "offline";
    else state = this.everConnected ? "reconnecting" : "connecting";
    if (state !== this.state) {
      this.state = state;
      this.listeners.forEach((fn) => fn());
    }
  };

  subscribe = (fn: () => void) => {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  };
}

let realtimeInstance: Realtime | null = null;
let realtimePromise: Promise<Realtime> | null = null;
const readyListeners = new Set<() => void>();

/** The app's single Realtime (created on first use in the browser; StrictMode-safe). */
export function realtime(): Promise<Realtime> {
  realtimePromise ??= realtimeBase().then((base) => {
    realtimeInstance = new Realtime(base);
    readyListeners.forEach((fn) => fn());
    return realtimeInstance;
  });
  return realtimePromise;
}
export const currentRealtime = () => realtimeInstance;
export function onRealtimeReady(fn: () => void): () => void {
  readyListeners.add(fn);
  return () => void readyListeners.delete(fn);
}
