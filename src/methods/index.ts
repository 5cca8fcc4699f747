/** The continual-learning method interface, the registry and the built-in methods. */
export * from './method.ts';
export * from './registry.ts';
