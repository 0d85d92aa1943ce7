// Package nspawn checks gaoler's Debian package the way an administrator meets it: installed with apt
// on a booted Debian 12 system, where systemd is PID 1, the unit runs under the real service manager,
// the daemon owns its name on the real system bus and reads ssh.service's entries from the real
// journal. The test (boot_test.go) boots a debootstrapped root (built and cached by mkroot.sh) with
// systemd-nspawn in its own network namespace, on an overlay so that every run starts clean. The root
// has the MTA a Debian host has by default (exim4, local delivery on 127.0.0.1:25), to which the mail
// subtest (mail_test.go) has gaolerd mail a ban through the unit's sandbox, its IP filter in force.
//
// Run it as root: GAOLER_INTEGRATION=1 go test ./packaging/nspawn/ -v
package nspawn
