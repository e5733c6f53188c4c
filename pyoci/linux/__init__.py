"""Kernel work, one module per concern (namespaces, mounts, rootfs, cgroups, ...): the
README's Layout table lists them. Empty on purpose: importing the package costs nothing."""
