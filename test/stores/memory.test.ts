/** The store contract against the embedded MemoryStore. */
import { describe } from 'vitest';
import { MemoryStore } from '../../stores/memory/store.js';
import { type StoreHarness, storeContract } from './contract.js';
import { storeConsistencyContract } from './contract-consistency.js';
import { storeOrderingContract } from './contract-ordering.js';
import { storeOutputContract } from './contract-output.js';
import { storeQuotaContract } from './contract-quotas.js';

const harness: StoreHarness = {
  async open(settings) {
    return new MemoryStore(settings);
  },
  // One process, one store: a "peer" is the same instance, as every node in
  // embedded mode is.
  async peer(store) {
    return store;
  },
  async listen(store, channel) {
    const messages: string[] = [];
    const stop = (store as MemoryStore).bus.subscribe(channel, (m) => messages.push(m));
    return { messages, stop: async () => stop() };
  },
};

describe('MemoryStore', () => {
  storeContract(harness);
  storeConsistencyContract(harness);
  storeOutputContract(harness);
  storeQuotaContract(harness);
  storeOrderingContract(harness);
});
