/**
 * A separate OS process appending audit events, for the multi-process test in audit.test.ts:
 *
 *   node --import tsx test/auth/audit-writer.ts <mongoUri> <database> <label> <count> <keyHex> <otherLabel>
 *
 * After its first event and again halfway, it waits until the other writer has stored as many,
 * so that the two really write at the same time even when a loaded machine schedules one late.
 * Prints "ready" once connected, waits for a line on stdin so that both writers start together,
 * appends <count> events as principal <label> in small concurrent bursts, then prints one JSON
 * line {"done":count,"conflicts":n} and exits 0.
 */
import { once } from "node:events";
import { MongoClient } from "mongodb";
import { AuditLog } from "../../src/auth/audit.js";
import { mongoAuditStore } from "../../src/store/audit-store.js";

const [uri, database, label, countText, keyHex, otherLabel] = process.argv.slice(2);
if (!uri || !database || !label || !countText || !keyHex || !otherLabel) {
  console.error(
    "usage: audit-writer.ts <mongoUri> <database> <label> <count> <keyHex> <otherLabel>",
  );
  process.exit(2);
}
const count = Number(countText);
const key = Buffer.from(keyHex, "hex");

const client = await MongoClient.connect(uri);
let conflicts = 0;
const log = new AuditLog(mongoAuditStore(client.db(database)), {
  getMacKey: (keyId = "k1") => (keyId === "k1" ? { keyId, key } : undefined),
  onConflict: () => {
    conflicts++;
  },
});

process.stdout.write("ready\n");
process.stdin.setEncoding("utf8");
await once(process.stdin, "data");

const barrier = async (n: number) => {
  const raw = client.db(database).collection("audit");
  while ((await raw.countDocuments({ principal: otherLabel })) < n) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};
const checkpoints = new Set([1, Math.floor(count / 2)]);

let i = 0;
while (i < count) {
  // Bursts of 1 to 8 appends in flight: small batches, many chances to collide with the other.
  const burst = Math.min(count - i, 1 + (i % 8));
  const appends: Promise<unknown>[] = [];
  for (let j = 0; j < burst; j++, i++) {
    appends.push(
      log.append({
        time: new Date(),
        principal: label,
        action: "secret.securevalues:decrypt",
        namespace: "proc",
        name: `s${i}`,
        outcome: "success",
        requestId: `${label}-${i}`,
        remoteAddress: "127.0.0.1",
      }),
    );
  }
  await Promise.all(appends);
  for (const c of checkpoints) {
    if (i >= c) {
      checkpoints.delete(c);
      await barrier(c);
    }
  }
  // A short pause between bursts spreads each writer over a second or so, so the two runs
  // overlap even when one process is scheduled late on a loaded machine.
  await new Promise((resolve) => setTimeout(resolve, 5));
}

process.stdout.write(`${JSON.stringify({ done: count, conflicts })}\n`);
await client.close();
process.exit(0);
