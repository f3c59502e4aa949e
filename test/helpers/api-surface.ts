/**
 * The package's public API as text, for the snapshot in test/api/: every name an entry point
 * exports, what kind of thing it is, and its shape as the TypeScript checker sees it (signatures,
 * members, property types), independent of which file declares it, so moving code between files
 * leaves it unchanged and changing what users can call does not.
 */
import ts from 'typescript';

const FORMAT = ts.TypeFormatFlags.NoTruncation | ts.TypeFormatFlags.UseFullyQualifiedType | ts.TypeFormatFlags.WriteArrowStyleSignature;

function isPublicMember(symbol: ts.Symbol): boolean {
  // #private fields, and symbol-keyed members (their names carry ids that change between compilations).
  if (symbol.name.startsWith('#') || symbol.name.startsWith('__#') || symbol.name.startsWith('__@')) return false;
  const declaration = symbol.valueDeclaration ?? symbol.declarations?.[0];
  // A synthetic member (of a mapped type) has no declaration: public.
  return !declaration || isPublicDeclaration(declaration);
}

function isPublicDeclaration(declaration: ts.Declaration): boolean {
  return (ts.getCombinedModifierFlags(declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) === 0;
}

/** `<T extends object>` as declared, or ''. */
function typeParameters(symbol: ts.Symbol): string {
  const declaration = symbol.declarations?.[0] as ts.DeclarationWithTypeParameterChildren | undefined;
  const parameters = declaration && 'typeParameters' in declaration ? declaration.typeParameters : undefined;
  return parameters?.length ? `<${parameters.map((p) => p.getText()).join(', ')}>` : '';
}

/** Absolute import paths the checker writes into types (`import("/work/...").X`) become the bare name. */
function clean(text: string): string {
  return text.replace(/import\("[^"]*"\)\./g, '');
}

function members(checker: ts.TypeChecker, type: ts.Type, at: ts.Node, indent: string): string[] {
  const lines: string[] = [];
  for (const signature of type.getCallSignatures()) lines.push(`${indent}(call) ${clean(checker.signatureToString(signature, at, FORMAT))}`);
  for (const signature of type.getConstructSignatures().filter((sig) => !sig.declaration || isPublicDeclaration(sig.declaration))) lines.push(`${indent}(new) ${clean(checker.signatureToString(signature, at, FORMAT))}`);
  const properties = checker.getPropertiesOfType(type).filter(isPublicMember).sort((a, b) => a.name.localeCompare(b.name));
  for (const property of properties) {
    const optional = property.flags & ts.SymbolFlags.Optional ? '?' : '';
    const propertyType = checker.getTypeOfSymbolAtLocation(property, at);
    lines.push(`${indent}${property.name}${optional}: ${clean(checker.typeToString(propertyType, at, FORMAT))}`);
  }
  return lines;
}

function describe(checker: ts.TypeChecker, exported: ts.Symbol, at: ts.Node): string[] {
  const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
  const name = exported.name;
  const lines: string[] = [];
  if (symbol.flags & ts.SymbolFlags.Class) {
    lines.push(`class ${name}${typeParameters(symbol)}`);
    const instance = checker.getDeclaredTypeOfSymbol(symbol);
    const bases = instance.isClassOrInterface() ? checker.getBaseTypes(instance as ts.InterfaceType).map((b) => clean(checker.typeToString(b, at, FORMAT))) : [];
    if (bases.length) lines.push(`  extends ${bases.join(', ')}`);
    lines.push(...members(checker, checker.getTypeOfSymbolAtLocation(symbol, at), at, '  static ').filter((l) => !l.includes(' prototype: ')));
    lines.push(...members(checker, instance, at, '  .'));
  } else if (symbol.flags & ts.SymbolFlags.Function) {
    for (const signature of checker.getTypeOfSymbolAtLocation(symbol, at).getCallSignatures()) {
      lines.push(`function ${name}${clean(checker.signatureToString(signature, at, FORMAT))}`);
    }
  } else if (symbol.flags & ts.SymbolFlags.Variable) {
    lines.push(`const ${name}: ${clean(checker.typeToString(checker.getTypeOfSymbolAtLocation(symbol, at), at, FORMAT))}`);
  } else if (symbol.flags & ts.SymbolFlags.Interface) {
    lines.push(`interface ${name}${typeParameters(symbol)}`, ...members(checker, checker.getDeclaredTypeOfSymbol(symbol), at, '  '));
  } else if (symbol.flags & ts.SymbolFlags.TypeAlias) {
    const type = checker.getDeclaredTypeOfSymbol(symbol);
    lines.push(`type ${name}${typeParameters(symbol)} = ${clean(checker.typeToString(type, at, FORMAT | ts.TypeFormatFlags.InTypeAlias))}`);
    const objectLiteral = type.flags & ts.TypeFlags.Object && (type as ts.ObjectType).objectFlags & ts.ObjectFlags.Anonymous;
    if (objectLiteral) lines.push(...members(checker, type, at, '  '));
  } else {
    lines.push(`${ts.SymbolFlags[symbol.flags] ?? symbol.flags} ${name}`);
  }
  return lines;
}

/** One entry point's exports, sorted by name, one block per name. */
export function describeEntryPoint(file: string, options: ts.CompilerOptions): string {
  const program = ts.createProgram([file], { ...options, noEmit: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`${file}: not found by the TypeScript program`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${file}: not a module`);
  const exported = checker.getExportsOfModule(moduleSymbol).sort((a, b) => a.name.localeCompare(b.name));
  return exported.map((e) => describe(checker, e, source).join('\n')).join('\n') + '\n';
}

/** The compiler options of the project's tsconfig.json. */
export function projectCompilerOptions(tsconfig: string): ts.CompilerOptions {
  const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, tsconfig.replace(/[/\\][^/\\]*$/, '')).options;
}
