export { SAMPLE_TABLES, tableDigests } from '../../src/local/compare.js';
