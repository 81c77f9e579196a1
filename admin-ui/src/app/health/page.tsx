"use client";
// Health: both listeners' /health, the REST /admin/stats and realtime /stats, polled each second.
import { useRef, useState } from "react";
import { Sparkline } from "@/components/Sparkline";
import { ApiError, type Json, api, apiBase } from "@/lib/api";
import { pretty } from "@/lib/format";
import { usePoll, useRealtime } from "@/lib/hooks";

type Probe = { data?: Json; error?: string; at?: number };
const SAMPLES = 60;

async function probe(fn: () => Promise<Json>): Promise<Probe> {
  try {
    return { data: await fn(), at: Date.now() };
  } catch (err) {
    const e = err as ApiError;
    // A degraded /health answers 503 with its report: show the report.
    if (e.status === 503 && (e.body as Json | null)?.status) return { data: e.body as Json, at: Date.now() };
    const hint = " (down, or it does not allow this page's origin)";
    return { error: e.status ? `HTTP ${e.status}: ${e.message}` : e.message + hint, at: Date.now() };
  }
}

const num = (v: unknown) => (typeof v === "number" ? v : 0);
const get = (obj: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Json)[k] : undefined), obj);

function Card({ title, probe, children }: { title: string; probe: Probe; children?: React.ReactNode }) {
  const status = probe.data ? String(probe.data.status ?? "ok") : probe.error ? "down" : "…";
  return (
    <section className="card" aria-labelledby={`h-${title}`}>
      <h2 id={`h-${title}`}>
        {title} <span className={`badge h-${status}`}>{status}</span>
      </h2>
      {probe.error && <p className="msg-error">{probe.error}</p>}
      {children}
      {probe.data && (
        <details>
          <summary>Raw JSON</summary>
          <pre className="json">{pretty(probe.data)}</pre>
        </details>
      )}
    </section>
  );
}

export default function HealthPage() {
  const rt = useRealtime();
  const [p, setP] = useState<Record<string, Probe>>({});
  const [rate, setRate] = useState<number[]>([]);
  const last = useRef<{ events: number; at: number } | null>(null);

  usePoll(async () => {
    const [rest, restStats, realtime, realtimeStats] = await Promise.all([
      probe(api.health),
      probe(api.stats),
      probe(api.realtimeHealth),
      probe(api.realtimeStats),
    ]);
    setP({ rest, restStats, realtime, realtimeStats });
    if (realtimeStats.data) {
      const events = num(get(realtimeStats.data, "events_sent", "log_lines")) + num(get(realtimeStats.data, "events_sent", "admin_events"));
      const now = realtimeStats.at!;
      if (last.current && now > last.current.at) {
        const perSecond = Math.max(0, (events - last.current.events) / ((now - last.current.at) / 1000));
        setRate((r) => [...r, perSecond].slice(-SAMPLES));
      }
      last.current = { events, at: now };
    }
  }, 1000);

  const conns = get(p.realtime?.data, "connections") as Json | undefined;
  const runs = (get(p.restStats?.data, "runs") ?? {}) as Record<string, number>;
  return (
    <>
      <h1>Health</h1>
      <p className="muted">
        REST <span className="mono">{rt ? apiBase() : "…"}</span> · realtime{" "}
        <span className="mono">{rt?.base ?? "…"}</span> · this page&apos;s transport{" "}
        <span className="mono">{rt?.manager.engine?.transport?.name ?? "—"}</span>
      </p>
      <div className="cards">
        <Card title="REST /health" probe={p.rest ?? {}}>
          {p.rest?.data && (
            <ul className="kv">
              <li>store: {get(p.rest.data, "store", "ok") ? "ok" : "down"} ({String(get(p.rest.data, "store", "latency_ms") ?? "—")} ms)</li>
              <li>pub/sub: {String(get(p.rest.data, "pubsub", "backend"))}, {get(p.rest.data, "pubsub", "connected") ? "connected" : "disconnected"}</li>
            </ul>
          )}
        </Card>
        <Card title="Realtime /health" probe={p.realtime ?? {}}>
          {conns && (
            <ul className="kv" data-testid="connections">
              <li>log connections: <strong>{String(conns.log_connections)}</strong></li>
              <li>admin connections: <strong>{String(conns.admin_connections)}</strong></li>
              <li>total: <strong>{String(conns.total_connections)}</strong></li>
            </ul>
          )}
        </Card>
        <Card title="Realtime /stats" probe={p.realtimeStats ?? {}}>
          <Sparkline values={rate} slots={SAMPLES} label="events sent" unit="/s" />
          {p.realtimeStats?.data && (
            <ul className="kv">
              <li>log lines sent: {String(get(p.realtimeStats.data, "events_sent", "log_lines"))}</li>
              <li>admin events sent: {String(get(p.realtimeStats.data, "events_sent", "admin_events"))}</li>
              <li>bus lag: {String(get(p.realtimeStats.data, "bus_lag_ms") ?? "—")} ms</li>
              <li>uptime: {String(get(p.realtimeStats.data, "uptime_seconds"))} s</li>
            </ul>
          )}
        </Card>
        <Card title="REST /admin/stats" probe={p.restStats ?? {}}>
          {p.restStats?.data && (
            <ul className="kv">
              {Object.entries(runs).map(([status, n]) => (
                <li key={status}>
                  {status}: {n}
                </li>
              ))}
              <li>active tasks: {String(get(p.restStats.data, "active_tasks"))}</li>
              <li>log lines written: {String(get(p.restStats.data, "log_lines_written"))}</li>
            </ul>
          )}
        </Card>
      </div>
    </>
  );
}
