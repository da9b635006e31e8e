import { installInterruptHandlers, interruptSignal } from '../core/interrupt.js';
import { defaultIo, main } from './main.js';

// The bundled entry of the `pgshift` command (bin/pgshift.js loads dist/cli/index.js). SIGINT and
// SIGTERM abort the running phase, which stops its work and leaves a state the next run continues.
installInterruptHandlers({ onMessage: (line) => process.stderr.write(`pgshift: ${line}\n`) });
const code = await main(process.argv, { ...defaultIo, signal: interruptSignal, reinvoke: [process.execPath, process.argv[1]] });
process.exit(code);
