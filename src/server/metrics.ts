/**
 * Observability: Prometheus metrics (prom-client, one registry per server, no module singletons). Labels carry route templates, protocols,
 * outcomes and operation names only: never a secret's name, a token, or a value.
 */
import type { MongoClient } from "mongodb";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Logger } from "../log.js";
import type { SecretsObserver } from "../service/ports.js";

/** The metrics seald exports at /metrics. */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "seald_requests_total",
    help: "Requests by protocol, route or RPC, and outcome.",
    labelNames: ["protocol", "route", "outcome"] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "seald_request_duration_seconds",
    help: "Request latency by protocol, route or RPC, and outcome.",
    labelNames: ["protocol", "route", "outcome"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly cryptoOps = new Counter({
    name: "seald_crypto_operations_total",
    help: "Envelope seal and open operations, sealed-box opens and data-key re-wraps.",
    labelNames: ["operation", "outcome"] as const,
    registers: [this.registry],
  });
  readonly decrypts = new Counter({
    name: "seald_decrypts_total",
    help: "Per-name decrypt results by outcome.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });
  readonly dbSeconds = new Histogram({
    name: "seald_db_operation_duration_seconds",
    help: "MongoDB command latency by command name and outcome.",
    labelNames: ["command", "outcome"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly rewrapProcessed = new Gauge({
    name: "seald_rewrap_processed",
    help: "Records examined by the current master-key re-wrap job.",
    registers: [this.registry],
  });
  readonly rewrapRemaining = new Gauge({
    name: "seald_rewrap_remaining",
    help: "Records the current re-wrap job has still to examine.",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "seald_" });
  }

  readonly damagedRecords = new Counter({
    name: "seald_damaged_records_total",
    help: "Stored records left out of an answer because their shape or integrity MAC is wrong.",
    labelNames: ["collection"] as const,
    registers: [this.registry],
  });

  /**
   * The adapter the secrets use cases report crypto operations, decrypt outcomes and damaged
   * records through; a damaged record is also logged, by name (never a value).
   */
  secretsObserver(logger: Logger): SecretsObserver {
    return {
      crypto: (operation, outcome) => this.cryptoOps.inc({ operation, outcome }),
      decrypted: (outcome) => this.decrypts.inc({ outcome }),
      damaged: ({ namespace, name, damaged }) => {
        this.damagedRecords.inc({ collection: "secrets" });
        logger.warn(
          { namespace, name, problem: damaged },
          "left a damaged secret record out of a list",
        );
      },
    };
  }

  /** Times every MongoDB command through the driver's command monitoring. */
  observeDatabase(client: MongoClient): void {
    client.on("commandSucceeded", (e) =>
      this.dbSeconds.observe({ command: e.commandName, outcome: "ok" }, e.duration / 1000),
    );
    client.on("commandFailed", (e) =>
      this.dbSeconds.observe({ command: e.commandName, outcome: "error" }, e.duration / 1000),
    );
  }
}
