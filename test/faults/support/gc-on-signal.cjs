// Test-only preload for the service process (NODE_OPTIONS=--require): on SIGUSR2, full garbage collections,
// then the memory that survived them as one stderr line. The fault suite measures retained memory this way,
// not RSS, which follows V8's lazy major collections up and down by tens of MB.
const v8 = require("node:v8");
const vm = require("node:vm");

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc");

process.on("SIGUSR2", () => {
  gc();
  gc();
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  process.stderr.write(`${JSON.stringify({ retained: { heapUsed, external, arrayBuffers, rss } })}\n`);
});
