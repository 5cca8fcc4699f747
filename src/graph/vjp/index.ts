/**
 * Loads every VJP rule file so the registry is complete; re-exports the registry API.
 */
import './elementwise.ts';
import './reduce.ts';
import './shape.ts';
import './linalg.ts';
import './nn.ts';

export {
  type VjpContext,
  type VjpEntry,
  type VjpRule,
  getVjp,
  isNonDifferentiable,
  registerNonDifferentiable,
  registerVjp,
  registeredNonDifferentiable,
  registeredVjps,
} from './registry.ts';
