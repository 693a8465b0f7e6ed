/**
 * Integration suites time out well inside scripts/test.sh's per-file limit (--test-timeout), so
 * a hang fails the suite while its after() hooks still run and clean up (berthd, containers,
 * mounts, bridges); a file killed at its own limit runs no hooks.
 */
export const SUITE_TIMEOUT_MS = 300_000;
