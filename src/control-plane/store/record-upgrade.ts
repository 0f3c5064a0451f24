/**
 * @module control-plane/store/record-upgrade
 * Function records written by older versions lack fields added since; both stores give them
 * their defaults on load, in this one place.
 */
import type { FunctionRecord } from '../../api/types.js';

export function upgradeFunctionRecord(r: FunctionRecord): FunctionRecord {
  const spec = r.spec as Partial<FunctionRecord['spec']> & FunctionRecord['spec'];
  const scaling = spec.scaling as Partial<FunctionRecord['spec']['scaling']> & FunctionRecord['spec']['scaling'];
  if (typeof spec.egress === 'boolean' && (spec.auth === 'none' || spec.auth === 'token') &&
    typeof scaling.keepAliveWindowS === 'number') return r;
  return {
    ...r,
    spec: {
      ...spec,
      egress: typeof spec.egress === 'boolean' ? spec.egress : false,
      auth: spec.auth === 'token' ? 'token' : 'none',
      // Before the keep-alive policy every function scaled as with it off.
      scaling: typeof scaling.keepAliveWindowS === 'number' ? scaling : { ...scaling, keepAliveWindowS: 0 },
    },
  };
}
