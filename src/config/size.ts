// Sizes are pure and live in core (rules use them); the plan's schema and older imports read them here.
export { formatBytes, parseSize } from '../core/size.js';
