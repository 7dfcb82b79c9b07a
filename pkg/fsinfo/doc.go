// Package fsinfo resolves a directory to the filesystem statistics the
// kubelet's cadvisor would report for it (cadvisor lib v0.60.5, as linked by
// kubernetes v1.37.2, GetDirFsInfo):
//
//  1. stat the directory and decode st_dev with cadvisor's old 12/20-bit
//     major:minor helpers;
//  2. look that major:minor up in the partition map cadvisor builds from
//     mountinfo (plugin per fs type, first mount per source wins, overlay and
//     tmpfs renamed, btrfs renumbered from stat of its mountpoint, "/" stored
//     last);
//  3. failing that, walk the directory's ancestors through the mount table
//     and accept a mount whose source starts with /dev/;
//  4. statfs the partition's recorded mountpoint (not the directory) with a
//     2 s bound, f_frsize arithmetic.
//
// Every step is recorded in a Lookup so it can be explained, and failures
// carry the exact text cadvisor gives the kubelet.
package fsinfo
