/**
 * The store contract on the in-memory fake (src/memory.ts).
 */
import { MemoryStore } from "../src/memory";
import { storeContract } from "./store.contract";

storeContract("memory", async () => {
  const store = new MemoryStore();
  return {
    store,
    // The fake publishes as it writes: nothing comes later.
    published: async (id) => store.published.filter((p) => p.data.shipment_id === id),
    close: async () => {},
  };
});
