// Worker thread entry: job modules and eddy itself are TypeScript, so register the loader
// before importing the real entry point.
import { register } from 'tsx/esm/api';

register();
await import('./worker-entry.ts');
