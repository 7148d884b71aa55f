-- Argo CD health of a Foresail InferenceService (resource.customizations.health.foresail.dev_InferenceService).
-- Degraded: the spec cannot be served, warm-ups fail, the autoscaler is blind (MetricsAvailable=False) or the
-- tenant's quota holds it below what it needs (QuotaLimited=True), or its last rollout was rolled back or
-- aborted (RolloutProgressing=False, RolledBack/Aborted: until the spec asks for another revision);
-- Progressing: a canary revision is rolling out (RolloutProgressing=True); Suspended: paused by an
-- annotation; Healthy: Ready (or scaled to zero); Progressing otherwise.
local hs = {status = "Progressing", message = "Waiting for the operator's status"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= nil
   and obj.status.observedGeneration < obj.metadata.generation then
  return {status = "Progressing", message = "Waiting for the operator to observe the new spec"}
end
local c = {}
for _, cond in ipairs(obj.status.conditions) do
  c[cond.type] = cond
end
local terminal = {InvalidSpec = true, RepositoryNotFound = true, InvalidPodTemplate = true}
if c.Ready ~= nil and c.Ready.status == "False" and terminal[c.Ready.reason] then
  return {status = "Degraded", message = c.Ready.reason .. ": " .. (c.Ready.message or "")}
end
if c.Paused ~= nil and c.Paused.status == "True" then
  return {status = "Suspended", message = c.Paused.message or "paused"}
end
if c.WarmupFailing ~= nil and c.WarmupFailing.status == "True" then
  return {status = "Degraded", message = "WarmupFailing: " .. (c.WarmupFailing.message or "")}
end
if c.MetricsAvailable ~= nil and c.MetricsAvailable.status == "False" then
  return {status = "Degraded", message = "MetricsAvailable=False (" .. (c.MetricsAvailable.reason or "") .. "): " .. (c.MetricsAvailable.message or "")}
end
if c.QuotaLimited ~= nil and c.QuotaLimited.status == "True" then
  return {status = "Degraded", message = "QuotaLimited (" .. (c.QuotaLimited.reason or "") .. "): " .. (c.QuotaLimited.message or "")}
end
local rollout = c.RolloutProgressing
if rollout ~= nil and rollout.status == "False" and (rollout.reason == "RolledBack" or rollout.reason == "Aborted") then
  return {status = "Degraded", message = "Rollout " .. rollout.reason .. ": " .. (rollout.message or "")}
end
if rollout ~= nil and rollout.status == "True" then
  return {status = "Progressing", message = "Rollout: " .. (rollout.message or "")}
end
if c.Ready ~= nil then
  if c.Ready.status == "True" or c.Ready.reason == "ScaledToZero" then
    return {status = "Healthy", message = c.Ready.message or ""}
  end
  hs.message = c.Ready.message or hs.message
end
return hs
