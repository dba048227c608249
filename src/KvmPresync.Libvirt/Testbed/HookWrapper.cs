namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// The qemu hook a testbed's destination instance gets (<see cref="PrivateLibvirtDaemonOptions.QemuHook"/>): a script that
/// runs kvmpresync-libvirt-hook against one receiver's socket, since a private instance's receiver does not listen on
/// the default /run/kvmpresync/libvirt-hook.sock.
/// </summary>
public static class HookWrapper
{
    /// <summary>Writes the script to <paramref name="path"/> (mode 0700) and returns the path.</summary>
    public static string Write(string path, string hookBinary, string socket)
    {
        File.WriteAllText(path, $"#!/bin/sh\nexec '{hookBinary}' --socket '{socket}' \"$@\"\n");
        HostProcesses.SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }
}
