// A bridge, to go with the benchmarks: the files in Bench/ use Model's types (Batch, Identity,
// LocalEvent, AdminUnits) but are being moved out of this target on another branch (issue 11,
// step 6), so they are left untouched here. An `@_exported import` in one file of a module makes
// the module visible in all of its files. Every other file of this target imports Model itself:
// delete this file once Bench/ has left (the benchmarks' own target then imports Model).
@_exported import Model
