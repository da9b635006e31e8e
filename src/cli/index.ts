import { main } from './main.js';

// The bundled entry of the `pgshift` command (bin/pgshift.js loads dist/cli/index.js).
const code = await main(process.argv);
process.exit(code);
