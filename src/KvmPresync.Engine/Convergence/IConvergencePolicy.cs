namespace KvmPresync.Engine.Convergence;

/// <summary>
/// Decides, after launch, when to stop copying live and pause the guest, and when to give up (the source keeps
/// running). Called once per final live round, right after that round's harvest, with named inputs only — so the
/// live sender and the simulator, given the same harvests, take the same decisions. Implementations are pure.
/// </summary>
public interface IConvergencePolicy
{
    ConvergenceDecision Decide(in ConvergenceInput input);
}
