"""What-if replay: trace loaders, replica/queue simulator, baseline policies, oracle, report."""
