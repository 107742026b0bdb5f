// The migration runner's library API (see docs/DATA-PLANE.md, "Migrations").
export * from './migration-set';
export * from './targets';
export * from './targets-file';
export * from './plan';
export * from './state';
export * from './result';
export * from './runner';
export * from './report';
export * from './control-plane';
export { applyTarget, type AfterApply, type ApplyOutcome } from './apply-target';
export { splitSqlStatements } from './split-sql';
export { migrateInWaves, type WaveMigrateOptions, type WaveReport, type WaveRunResult } from './waves';
