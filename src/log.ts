/**
 * Structured JSON logging with pino. Credentials are redacted by path as a second line of
 * defence; the first is that secret material is never put into a log object at all.
 */
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/** The levels SEALD_LOG_LEVEL takes, most severe first. */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

/** Paths pino blanks out wherever they appear in a log object. */
export const redactPaths = [
  "authorization",
  "token",
  "value",
  "plaintext",
  "password",
  "masterKeys",
  "bootstrapToken",
  "mongodbUri",
  "*.authorization",
  "*.token",
  "*.value",
  "*.plaintext",
  "*.password",
  "headers.authorization",
  "req.headers.authorization",
];

/** Creates the process logger; the destination defaults to stdout. */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "seald" },
      redact: { paths: redactPaths, censor: "[REDACTED]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
