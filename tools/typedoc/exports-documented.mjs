// A TypeDoc plugin: every export of the package (each top-level symbol of the API reference)
// must have a doc comment — on itself or, for a function, on its signature. TypeDoc's own
// `notDocumented` check (typedoc.json's requiredToBeDocumented) covers classes, interfaces,
// types and variables but, asked for functions, wants every method of every interface too.
import { Application, ReflectionKind } from 'typedoc';

const documented = (r) =>
  r.hasComment() ||
  (r.signatures ?? []).some((s) => s.hasComment()) ||
  (r.type?.declaration?.signatures ?? []).some((s) => s.hasComment());

/** @param {Application} app */
export function load(app) {
  app.on(Application.EVENT_VALIDATE_PROJECT, (project) => {
    for (const r of project.children ?? []) {
      if (!documented(r)) {
        app.logger.validationWarning(
          `export ${r.name} (${ReflectionKind[r.kind]}) does not have a doc comment`,
        );
      }
    }
  });
}
