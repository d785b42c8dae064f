/**
 * The in-memory stores of the unit tier (test/harness/memory-stores.ts) against the storage
 * ports' contracts, the same tests the MongoDB stores pass in contracts.test.ts: the fakes the
 * fast tier relies on behave as the real stores do.
 */
import {
  MemoryAccessStore,
  MemoryAuditStore,
  MemoryProviderStore,
  MemorySecretStore,
} from "../harness/memory-stores.js";
import {
  accessStoreContract,
  auditStoreContract,
  providerStoreContract,
  secretStoreContract,
} from "./contracts.js";

secretStoreContract(async (options) => new MemorySecretStore(options));
accessStoreContract(async () => new MemoryAccessStore());
auditStoreContract(async () => new MemoryAuditStore());
providerStoreContract(async () => new MemoryProviderStore());
