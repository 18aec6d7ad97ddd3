// Module hook registered by bench/run.ts: `ava` resolves to bench/ava-stub.js.
interface ResolveContext { parentURL?: string }
type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: ResolveContext, next: NextResolve): Promise<{ url: string; shortCircuit?: boolean }> {
  if (specifier === 'ava') return { url: new URL('./ava-stub.js', import.meta.url).href, shortCircuit: true };
  return next(specifier, context);
}
