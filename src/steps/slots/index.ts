/**
 * Step kinds, slots family. Moving hash slots between masters: explicit moves and planned consolidate
 * / spread / restore moves. A kind of this family is its file and one line here.
 */
export { moveSlotPlanStep } from './move-slot-plan.js';
export { moveSlotsStep } from './move-slots.js';
