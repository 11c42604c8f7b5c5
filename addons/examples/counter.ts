/**
 * An addon as a class: count the requests seen so far and log the count.
 *
 *     mitmdeno -s addons/examples/counter.ts
 */
import { ctx, type HTTPFlow } from "mitmdeno";

export class Counter {
  num = 0;

  request(_flow: HTTPFlow): void {
    this.num += 1;
    ctx.log.info(`We've seen ${this.num} flows`);
  }
}

export const addons = [new Counter()];
