// One chat call made the way LibreChat makes it to a custom endpoint: @langchain/openai's ChatOpenAI
// (LibreChat's model client) over openai@6, streaming with streamUsage off, the user id in `user`,
// the identity headers of librechat.yaml in `configuration.defaultHeaders`, and LangChain's own
// retries (up to 6: a 429 with Retry-After <= 60 s and a 503 are tried again, as in LibreChat).
//
// Input (stdin, JSON): {baseURL, apiKey, model, messages, headers?, user?, stream? (default
//   true), tools? (OpenAI function tools), maxTokens?, temperature?, maxRetries? (default:
//   LangChain's)}. A message is {role, content} with role system, user, assistant or tool; an
//   assistant's may carry tool_calls [{id, name, args}], a tool's answer its tool_call_id.
// Output (stdout, one JSON line): {ok: true, content, tool_calls, chunks, elapsed_ms} or
//   {ok: false, status, error, elapsed_ms}, where `error` is the error body Solaris answered and
//   `elapsed_ms` the time the client took, retries included.
import { ChatOpenAI } from "@langchain/openai";
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from "@langchain/core/messages";

const MESSAGE_TYPES = { system: SystemMessage, user: HumanMessage, assistant: AIMessage };

function messageOf({ role, content, tool_call_id: toolCallId, tool_calls: toolCalls }) {
  if (role === "tool") return new ToolMessage({ content, tool_call_id: toolCallId });
  if (toolCalls) {
    const calls = toolCalls.map((call) => ({ ...call, type: "tool_call" }));
    return new AIMessage({ content, tool_calls: calls });
  }
  return new MESSAGE_TYPES[role]({ content });
}

async function readInput() {
  const parts = [];
  for await (const part of process.stdin) parts.push(part);
  return JSON.parse(Buffer.concat(parts).toString("utf8"));
}

async function main() {
  const spec = await readInput();
  const stream = spec.stream ?? true;
  let model = new ChatOpenAI({
    model: spec.model,
    apiKey: spec.apiKey,
    streaming: stream,
    streamUsage: false,
    user: spec.user,
    ...(spec.maxRetries !== undefined ? { maxRetries: spec.maxRetries } : {}),
    ...(spec.maxTokens ? { maxTokens: spec.maxTokens } : {}),
    ...(spec.temperature !== undefined ? { temperature: spec.temperature } : {}),
    configuration: { baseURL: spec.baseURL, defaultHeaders: spec.headers ?? {} },
  });
  if (spec.tools) model = model.bindTools(spec.tools);
  const messages = spec.messages.map(messageOf);
  try {
    if (!stream) {
      const answer = await model.invoke(messages);
      return { ok: true, content: answer.content, tool_calls: answer.tool_calls ?? [], chunks: 1 };
    }
    let answer;
    let chunks = 0;
    for await (const chunk of await model.stream(messages)) {
      answer = answer === undefined ? chunk : answer.concat(chunk);
      chunks += 1;
    }
    return {
      ok: true,
      content: answer?.content ?? "",
      tool_calls: answer?.tool_calls ?? [],
      chunks,
    };
  } catch (error) {
    return { ok: false, status: error.status ?? null, error: error.error ?? String(error) };
  }
}

const started = performance.now();
const result = await main();
result.elapsed_ms = Math.round(performance.now() - started);
process.stdout.write(JSON.stringify(result) + "\n");
