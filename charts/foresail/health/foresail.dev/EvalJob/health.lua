-- Argo CD health of a Foresail EvalJob (resource.customizations.health.foresail.dev_EvalJob).
-- Healthy: Succeeded; Degraded: Failed, or not admitted for a reason it cannot outwait; Suspended: suspended
-- (by the user or preempted); Progressing otherwise.
local hs = {status = "Progressing", message = "Waiting for the operator's status"}
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local c = {}
for _, cond in ipairs(obj.status.conditions) do
  c[cond.type] = cond
end
if c.Succeeded ~= nil and c.Succeeded.status == "True" then
  return {status = "Healthy", message = c.Succeeded.message or "succeeded"}
end
if c.Failed ~= nil and c.Failed.status == "True" then
  return {status = "Degraded", message = (c.Failed.reason or "Failed") .. ": " .. (c.Failed.message or "")}
end
if c.Suspended ~= nil and c.Suspended.status == "True" then
  return {status = "Suspended", message = (c.Suspended.reason or "Suspended") .. ": " .. (c.Suspended.message or "")}
end
if c.Running ~= nil and c.Running.status == "True" then
  return {status = "Progressing", message = c.Running.message or "running"}
end
if c.Admitted ~= nil and c.Admitted.status == "False" then
  hs.message = "not admitted (" .. (c.Admitted.reason or "") .. "): " .. (c.Admitted.message or "")
end
return hs
