import type { ContainerState } from '@ferry/core';

/** Whether a container in this state has processes (anything but STOPPED). */
export function isActive(s: ContainerState): boolean {
  return s !== 'STOPPED';
}
