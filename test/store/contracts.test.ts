/**
 * The storage ports' contracts (contracts.ts) against the MongoDB stores of src/store, each test
 * in a fresh database initialised as seald starts one. The in-memory stores pass the same tests
 * in memory-contracts.unit.test.ts.
 */
import { afterAll, expect } from "vitest";
import { mongoAccessStore } from "../../src/store/access-store.js";
import { mongoAuditStore } from "../../src/store/audit-store.js";
import { Database } from "../../src/store/database.js";
import { mongoProviderStore } from "../../src/store/provider-store.js";
import { mongoSecretStore } from "../../src/store/secret-store.js";
import { mongoUri, silentLogger, uniqueDatabase } from "../harness/seald.js";
import {
  accessStoreContract,
  auditStoreContract,
  providerStoreContract,
  secretStoreContract,
} from "./contracts.js";

const databases: Database[] = [];

async function freshDb() {
  const database = new Database({
    uri: mongoUri(),
    name: uniqueDatabase("contract"),
    logger: silentLogger(),
  });
  databases.push(database);
  expect(await database.start(AbortSignal.timeout(20_000))).toBe(true);
  return database.db;
}

afterAll(async () => {
  for (const database of databases) await database.close();
});

secretStoreContract(async (options) => mongoSecretStore(await freshDb(), options));
accessStoreContract(async () => mongoAccessStore(await freshDb()));
auditStoreContract(async () => mongoAuditStore(await freshDb()));
providerStoreContract(async () => mongoProviderStore(await freshDb()));
