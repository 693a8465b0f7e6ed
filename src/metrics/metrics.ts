/**
 * berthd's Prometheus metrics: CRI request counts and latency, pulls, containers by state,
 * the pod/container start-up timeline, and the standard process metrics.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: "berth_cri_requests_total",
    help: "CRI requests by method and outcome (gRPC code name)",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });
  readonly requestSeconds = new Histogram({
    name: "berth_cri_request_duration_seconds",
    help: "CRI request latency by method",
    labelNames: ["method"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly pulls = new Counter({
    name: "berth_image_pulls_total",
    help: "Image pulls by result",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly pullBytes = new Counter({
    name: "berth_image_pull_bytes_total",
    help: "Compressed layer bytes of pulled images",
    registers: [this.registry],
  });
  readonly phaseSeconds = new Histogram({
    name: "berth_startup_phase_duration_seconds",
    help: "Duration of each phase of pod and container start-up (the start-up timeline)",
    labelNames: ["object", "phase"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly containers: Gauge<"state">;

  constructor(containersByState: () => Record<string, number>) {
    this.containers = new Gauge({
      name: "berth_containers",
      help: "Containers by state",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        for (const [state, n] of Object.entries(containersByState())) this.set({ state }, n);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }
}
