/**
 * @module data-plane/shell/lb-policy
 * The configured load-balancing policy, checked against the known names.
 */
import { ConfigError } from '../../config/compile.js';
import { lbPolicyNames, type LbPolicyName } from '../../policy/load-balancing/lb.js';

export function toLbPolicy(name: string): LbPolicyName {
  const found = lbPolicyNames.find((p) => p === name);
  if (!found) throw new ConfigError(`data plane: loadBalancing must be one of ${lbPolicyNames.join(', ')}, got ${name}`);
  return found;
}
