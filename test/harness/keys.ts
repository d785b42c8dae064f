/**
 * Test master keys, in a module of their own so that tests without a server (the unit tier) can
 * use them without loading the server harness.
 */

/** A master key line "<id>:<base64>" whose 32 key bytes are all `fill`: distinct and repeatable. */
export function masterKeyLine(id: string, fill: number): string {
  return `${id}:${Buffer.alloc(32, fill).toString("base64")}`;
}
