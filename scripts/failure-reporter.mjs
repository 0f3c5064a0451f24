// A node:test reporter that writes one JSON line per failed test or hook (name, file, kind,
// message), so scripts/run-tests.js can print what failed after the TAP stream: in a long CI log
// the cause of a failure (a suite's `before` above all) is otherwise far from its tail.
const messageCharsMax = 12_000;

export default async function* failureReporter(source) {
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const error = event.data.details?.error;
    const cause = error?.cause;
    const message = cause instanceof Error ? `${cause.message}\n${cause.stack ?? ''}` : String(cause ?? error?.message ?? 'unknown');
    yield `${JSON.stringify({
      name: event.data.name,
      file: event.data.file ?? '',
      kind: error?.failureType ?? '',
      message: message.slice(0, messageCharsMax),
    })}\n`;
  }
}
