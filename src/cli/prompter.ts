import inquirer from 'inquirer';
import type { Prompter, StepDecision, FailureDecision } from '../engine/runner.js';
import { renderConditions } from './render.js';
import { bold, red, yellow } from './style.js';

/** Guided mode: show what a step will do, then ask. */
export function terminalPrompter(): Prompter {
  return {
    async confirmStep(step, conditions) {
      console.log(`\n${bold(step.title)}`);
      for (const c of step.commands) console.log(`  -> ${c.target}: ${c.command}${c.when ? ` (${c.when})` : ''}`);
      for (const l of renderConditions(conditions, '  ')) console.log(l);
      if (step.destructive) console.log(red(`  DESTRUCTIVE: ${step.destructive}`));
      const { decision } = await inquirer.prompt<{ decision: StepDecision }>([
        {
          type: 'select',
          name: 'decision',
          message: step.destructive ? yellow(`Run this destructive step [${step.id}]?`) : `Run step [${step.id}]?`,
          choices: [
            { name: step.destructive ? 'continue (I accept the risk above)' : 'continue', value: 'continue' },
            { name: 'skip this step', value: 'skip' },
            { name: 'abort the run', value: 'abort' },
          ],
          default: step.destructive ? 'abort' : 'continue',
        },
      ]);
      return decision;
    },
    async onFailure(step, error, conditions) {
      console.log(red(`\nStep [${step.id}] failed: ${error.split('\n')[0]}`));
      for (;;) {
        const { decision } = await inquirer.prompt<{ decision: FailureDecision | 'details' }>([
          {
            type: 'select',
            name: 'decision',
            message: 'What now?',
            choices: [
              { name: 'retry the step (it re-checks the cluster first)', value: 'retry' },
              { name: 'skip the step', value: 'skip' },
              { name: 'abort the run', value: 'abort' },
              { name: 'details', value: 'details' },
            ],
          },
        ]);
        if (decision !== 'details') return decision;
        console.log(error);
        for (const l of renderConditions(conditions, '  ')) console.log(l);
      }
    },
  };
}
