"use client";
// One run's log, exactly once and in `seq` order: Socket.IO `subscribe {since: lastSeq}` on every
// (re)connect replays what was missed; any hole left (a replay over the server's cap, a lost live
// line) is paged in over REST; lines already held are dropped.
import { useEffect, useState, useSyncExternalStore } from "react";
import { type LogLine, type Realtime, type SubscribeAck, api } from "./api";
import { useRealtime } from "./hooks";

export class LogFeed {
  readonly lines: LogLine[] = [];
  lastSeq = 0;
  error: string | null = null;
  version = 0;
  private ahead = new Map<number, LogLine>(); // arrived before the lines in front of them
  private target = 0; // the highest seq the server said it holds
  private subscribing = false;
  private filling: Promise<void> | null = null;
  private fillTimer: ReturnType<typeof setTimeout> | undefined;
  private emptyPages = 0;
  private frame = 0;
  private closed = false;
  private listeners = new Set<() => void>();

  constructor(
    readonly threadId: string,
    private rt: Realtime,
  ) {}

  open(): () => void {
    const release = this.rt.holdLogs();
    const socket = this.rt.logs;
    socket.on("log", this.onLog);
    socket.on("connect", this.subscribe);
    if (socket.connected) this.subscribe();
    return () => {
      this.closed = true;
      clearTimeout(this.fillTimer);
      cancelAnimationFrame(this.frame);
      socket.off("log", this.onLog);
      socket.off("connect", this.subscribe);
      if (socket.connected) socket.emit("unsubscribe", { thread_id: this.threadId });
      release();
    };
  }

  subscribe = async (): Promise<void> => {
    if (this.closed || !this.rt.logs.connected) return;
    this.subscribing = true;
    try {
      const ack: SubscribeAck = await this.rt.logs
        .timeout(15000)
        .emitWithAck("subscribe", { thread_id: this.threadId, since: this.lastSeq });
      if (ack.error) throw new Error(ack.error);
      this.subscribing = false;
      this.error = null;
      // The replay precedes the ack on the wire, so any seq still missing must come over REST.
      this.target = Math.max(this.target, ack.last_seq ?? 0);
      await this.fill();
    } catch (err) {
      this.subscribing = false;
      if (this.closed) return;
      this.error = `live log subscription failed (${(err as Error).message}); retrying`;
      this.notify();
      setTimeout(this.subscribe, 2000);
    }
  };

  private onLog = (line: LogLine) => {
    if (line.thread_id === this.threadId) this.accept([line]);
  };

  private accept(lines: LogLine[]): void {
    for (const line of lines) {
      if (line.seq === this.lastSeq + 1) {
        this.lines.push(line);
        this.lastSeq = line.seq;
      } else if (line.seq > this.lastSeq) {
        this.ahead.set(line.seq, line);
      }
    }
    for (let next = this.ahead.get(this.lastSeq + 1); next; next = this.ahead.get(this.lastSeq + 1)) {
      this.lines.push(next);
      this.lastSeq = next.seq;
    }
    for (const seq of this.ahead.keys()) if (seq <= this.lastSeq) this.ahead.delete(seq);
    if (this.ahead.size && !this.subscribing && !this.filling && !this.fillTimer) {
      // Give an in-flight replay a moment before treating the hole as lost.
      this.fillTimer = setTimeout(() => {
        this.fillTimer = undefined;
        void this.fill();
      }, 300);
    }
    this.notify();
  }

  private goal(): number {
    let goal = this.target;
    for (const seq of this.ahead.keys()) goal = Math.max(goal, seq - 1);
    return goal;
  }

  private fill(): Promise<void> {
    this.filling ??= this.page().finally(() => (this.filling = null));
    return this.filling;
  }

  private async page(): Promise<void> {
    try {
      while (!this.closed && this.lastSeq < this.goal()) {
        const page = await api.logs(this.threadId, this.lastSeq, Math.min(5000, this.goal() - this.lastSeq));
        if (!page.lines.length) {
          // The store writes in batches and may trail the live path: look again shortly.
          if (++this.emptyPages <= 20) setTimeout(() => void this.fill(), 500);
          else this.error = `lines after seq ${this.lastSeq} are missing from the store`;
          this.notify();
          return;
        }
        this.emptyPages = 0;
        this.accept(page.lines);
      }
    } catch (err) {
      if (this.closed) return;
      this.error = `could not load earlier lines (${(err as Error).message}); retrying`;
      this.notify();
      setTimeout(() => void this.fill(), 3000);
    }
  }

  private notify(): void {
    // Many lines a frame arrive at full rate: render at most once per frame.
    if (this.frame || this.closed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.version += 1;
      this.listeners.forEach((fn) => fn());
    });
  }

  listen = (fn: () => void) => {
    this.listeners.add(fn);
    return () => void this.listeners.delete(fn);
  };
}

const none = () => () => {};

/** The live log of `threadId` (null until the realtime connection is set up). */
export function useLogFeed(threadId: string | null): LogFeed | null {
  const rt = useRealtime();
  const [feed, setFeed] = useState<LogFeed | null>(null);
  useEffect(() => {
    if (!rt || !threadId) return;
    const next = new LogFeed(threadId, rt);
    const close = next.open();
    setFeed(next);
    return close;
  }, [rt, threadId]);
  useSyncExternalStore(
    feed ? feed.listen : none,
    () => feed?.version ?? 0,
    () => 0,
  );
  return feed;
}
