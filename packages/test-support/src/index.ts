// @largo/test-support: test-only helpers shared by every package's tests
// (never built or shipped; tests import it by name, not by relative path).
export * from './oracle.js';
export * from './errors.js';
export * from './generators.js';
export * from './backends.js';
export * from './coverage.js';
export * from './record.js';
export * from './layering.js';
export * from './requirements.js';
