// Validates an AsyncAPI document with the official parser (@asyncapi/parser).
// Usage: node asyncapi_parse.cjs <dir holding node_modules/@asyncapi/parser> <document>
// Prints every diagnostic as one JSON line; exits 1 when any is an error, 2 on bad usage.
"use strict";

const fs = require("fs");

async function main() {
  const [where, file] = process.argv.slice(2);
  if (!where || !file) {
    console.error("usage: node asyncapi_parse.cjs <parser dir> <document>");
    return 2;
  }
  const { Parser, DiagnosticSeverity } = require(
    require.resolve("@asyncapi/parser", { paths: [where] }),
  );
  const diagnostics = await new Parser().validate(fs.readFileSync(file, "utf8"));
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    const severity = ["error", "warning", "information", "hint"][d.severity];
    console.log(JSON.stringify({ severity, code: d.code, path: d.path.join("."), message: d.message }));
  }
  console.log(JSON.stringify({ diagnostics: diagnostics.length, errors }));
  return errors ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(3);
  },
);
