// GET /metrics: the Prometheus text format through prom-client, on a registry
// of this server's own (two servers in one process keep separate counts),
// with prom-client's process metrics (resident memory, event-loop lag, GC).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  requests: Counter<'model' | 'endpoint' | 'code'>;
  queueDepth: Gauge;
  batchSize: Histogram<'model'>;
  latency: Histogram<'model' | 'endpoint'>;
  planBytes: Gauge<'model'>;
}

export function createMetrics(batchBuckets: number[]): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cait_serve_' });
  return {
    registry,
    requests: new Counter({ name: 'cait_serve_requests_total', help: 'HTTP requests answered, by model, endpoint and status code', labelNames: ['model', 'endpoint', 'code'], registers: [registry] }),
    queueDepth: new Gauge({ name: 'cait_serve_queue_depth', help: 'Images waiting for a forward (all models)', registers: [registry] }),
    batchSize: new Histogram({ name: 'cait_serve_batch_size', help: 'Images per planned forward', labelNames: ['model'], buckets: batchBuckets, registers: [registry] }),
    latency: new Histogram({
      name: 'cait_serve_request_duration_seconds', help: 'Time from request received to response sent',
      labelNames: ['model', 'endpoint'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry],
    }),
    planBytes: new Gauge({ name: 'cait_serve_plan_arena_bytes', help: 'Arena bytes of the cached planned forwards', labelNames: ['model'], registers: [registry] }),
  };
}
