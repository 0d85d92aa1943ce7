// Package config reads gaoler's TOML configuration: the main file (by default /etc/gaoler/gaoler.toml)
// and the drop-ins in the jail.d folder beside it, merged key by key in lexical order (a later file wins;
// tables merge recursively, arrays are replaced as a whole).
//
// Load resolves the result into a Config the daemon can use directly: every jail has the [defaults]
// inherited, its durations, addresses and ports parsed, and its filter compiled through package jails.
// Every mistake is an *Error naming the file, line, column and key; Load reports all of them at once, so
// an admin fixes a config in one round. Warnings (a filter that trusts fields any local user can set) do
// not stop a config from loading.
//
// The package owns the syntax and meaning of the configuration file; it does not watch files or decide
// when to reload (the daemon does), and it knows nothing of nftables or the journal beyond the names and
// match strings it validates.
package config
