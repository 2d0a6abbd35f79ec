// The graphql-transport-ws protocol, as much of it as the live view needs, written here so
// the page keeps no third-party code: connection_init (with the key) → connection_ack, then
// one subscribe → next… (or error), ping answered with pong, complete to stop.
// The server closes with 4403 when the key is refused.

const PROTOCOL = "graphql-transport-ws";

/** Subscribes to one operation; returns a function that stops it. */
export function subscribe({ query, variables, key, onOpen, onNext, onError, onClosed }) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/graphql`, PROTOCOL);
  const id = "live";
  let stopped = false;
  const send = (message) => socket.send(JSON.stringify(message));
  socket.addEventListener("open", () => {
    send({ type: "connection_init", payload: key ? { Authorization: `Bearer ${key}` } : {} });
  });
  socket.addEventListener("message", ({ data }) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      onError("the server sent a message that is not JSON");
      return;
    }
    if (message.type === "connection_ack") {
      send({ id, type: "subscribe", payload: { query, variables } });
      onOpen?.();
    } else if (message.type === "ping") send({ type: "pong" });
    else if (message.type === "next" && message.payload?.errors?.length)
      onError(message.payload.errors[0].message);
    else if (message.type === "next") onNext(message.payload.data);
    else if (message.type === "error") onError(message.payload?.[0]?.message ?? "the subscription was refused");
  });
  socket.addEventListener("close", (event) => {
    if (!stopped) onClosed?.(event.code, event.reason);
  });
  return () => {
    stopped = true;
    if (socket.readyState === WebSocket.OPEN) {
      send({ id, type: "complete" });
      socket.close(1000, "done");
    } else if (socket.readyState === WebSocket.CONNECTING) {
      socket.addEventListener("open", () => socket.close(1000, "done"));
    }
  };
}
