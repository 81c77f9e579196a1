// What an interrupt asks, by the shape of its value, and how to answer it.
//
// - Beacon's own workflows ask a question (`{question, …}`) and take `{decision, comment, data}`.
// - LangChain's HumanInTheLoopMiddleware asks `{action_requests, review_configs}` and takes
//   `{decisions: [one per action request, in order]}`.
// - Anything else belongs to the graph: it is answered with a JSON value of its own shape.
import type { JsonSchema, Pending } from "./api";

export type HitlDecisionType = "approve" | "edit" | "reject" | "respond";
export const HITL_DECISION_TYPES: HitlDecisionType[] = ["approve", "edit", "reject", "respond"];

export interface HitlActionRequest {
  name: string;
  args: Record<string, unknown>;
  description?: string;
}
export interface HitlReviewConfig {
  action_name: string;
  allowed_decisions: HitlDecisionType[];
  args_schema?: JsonSchema;
}
export interface HitlRequest {
  action_requests: HitlActionRequest[];
  review_configs: HitlReviewConfig[];
}
export type HitlDecision =
  | { type: "approve" }
  | { type: "edit"; edited_action: { name: string; args: Record<string, unknown> } }
  | { type: "reject"; message?: string }
  | { type: "respond"; message: string };

export const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** The value as a HumanInTheLoopMiddleware request, or null when it has another shape. */
export function asHitl(value: unknown): HitlRequest | null {
  if (!isObject(value)) return null;
  const { action_requests: actions, review_configs: configs } = value;
  if (!Array.isArray(actions) || !actions.length || !Array.isArray(configs)) return null;
  const actionsOk = actions.every(
    (a) => isObject(a) && typeof a.name === "string" && isObject(a.args) && (a.description === undefined || typeof a.description === "string"),
  );
  const configsOk = configs.every(
    (c) => isObject(c) && typeof c.action_name === "string" && Array.isArray(c.allowed_decisions) && c.allowed_decisions.every((d) => typeof d === "string"),
  );
  return actionsOk && configsOk ? (value as unknown as HitlRequest) : null;
}

/** The decisions the review config of action `index` allows, in the middleware's order. */
export function allowedFor(request: HitlRequest, index: number): HitlDecisionType[] {
  const action = request.action_requests[index];
  // One config per action request, in order; match by name when the lists do not line up.
  const byIndex = request.review_configs[index];
  const config = byIndex?.action_name === action.name ? byIndex : request.review_configs.find((c) => c.action_name === action.name);
  const allowed = config?.allowed_decisions ?? ["approve", "reject"];
  return HITL_DECISION_TYPES.filter((d) => allowed.includes(d));
}

export function argsSchemaFor(request: HitlRequest, index: number): JsonSchema | undefined {
  const action = request.action_requests[index];
  const byIndex = request.review_configs[index];
  const config = byIndex?.action_name === action.name ? byIndex : request.review_configs.find((c) => c.action_name === action.name);
  return config?.args_schema;
}

/** Beacon's own approval request: a question to approve or reject (or a deadline with a default). */
export function isBeaconApproval(pending: Pending): boolean {
  const v = pending.value;
  return (isObject(v) && typeof v.question === "string") || !!pending.default_action;
}

export type InterruptKind = "hitl" | "beacon" | "raw";

export function interruptKind(pending: Pending): InterruptKind {
  if (asHitl(pending.value)) return "hitl";
  return isBeaconApproval(pending) ? "beacon" : "raw";
}

export type Parsed<T> = { value: T; error?: undefined } | { value?: undefined; error: string };

/** Any JSON value; the empty text is not one. */
export function parseJson(text: string): Parsed<unknown> {
  if (!text.trim()) return { error: "Enter a JSON value, for example {\"decision\": \"approve\"}." };
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { error: `Not valid JSON: ${(err as Error).message}` };
  }
}

const typeOk = (type: string | undefined, v: unknown): boolean => {
  switch (type) {
    case "string":
      return typeof v === "string";
    case "integer":
      return Number.isInteger(v);
    case "number":
      return typeof v === "number";
    case "boolean":
      return typeof v === "boolean";
    case "array":
      return Array.isArray(v);
    case "object":
      return isObject(v);
    default:
      return true;
  }
};

/** Edited tool arguments: a JSON object; with an args schema, its required fields and their types. */
export function parseArgs(text: string, schema?: JsonSchema): Parsed<Record<string, unknown>> {
  const parsed = parseJson(text);
  if (parsed.error !== undefined) return parsed.error.startsWith("Enter") ? { error: "The arguments must be a JSON object: { … }." } : parsed;
  if (!isObject(parsed.value)) return { error: "The arguments must be a JSON object: { … }." };
  const args = parsed.value;
  const missing = (schema?.required ?? []).filter((k) => !(k in args));
  if (missing.length) return { error: `Missing required argument${missing.length > 1 ? "s" : ""}: ${missing.join(", ")}.` };
  for (const [k, prop] of Object.entries(schema?.properties ?? {})) {
    if (k in args && !typeOk(prop.type, args[k])) return { error: `${k} must be of type ${prop.type}.` };
  }
  return { value: args };
}

/** One line for a queue or a list: the question, the tool calls under review, or short JSON. */
export function summary(value: unknown, max = 160): string {
  if (isObject(value) && typeof value.question === "string") return value.question;
  const hitl = asHitl(value);
  if (hitl) {
    const n = hitl.action_requests.length;
    return `Review ${n} tool call${n > 1 ? "s" : ""}: ${hitl.action_requests.map((a) => a.name).join(", ")}`;
  }
  const text = JSON.stringify(value) ?? "";
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** What a resume value said, for the decisions list: HITL decision types, or short JSON. */
export function resumeSummary(data: unknown): string {
  if (isObject(data) && Array.isArray(data.decisions)) {
    return data.decisions.map((d) => (isObject(d) && typeof d.type === "string" ? d.type : "?")).join(", ");
  }
  const text = JSON.stringify(data) ?? "null";
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
