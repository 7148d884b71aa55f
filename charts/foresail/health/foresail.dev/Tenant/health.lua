-- Argo CD health of a Foresail Tenant (resource.customizations.health.foresail.dev_Tenant).
-- Degraded: a namespace it claims belongs to another tenant; Healthy: its quotas are enforced (the message
-- says what it holds and waits for); Progressing until the operator has arbitrated it.
if obj.status == nil or obj.status.conditions == nil then
  return {status = "Progressing", message = "Waiting for the operator's status"}
end
local c = {}
for _, cond in ipairs(obj.status.conditions) do
  c[cond.type] = cond
end
if c.NamespaceConflict ~= nil and c.NamespaceConflict.status == "True" then
  return {status = "Degraded", message = "NamespaceConflict: " .. (c.NamespaceConflict.message or "")}
end
if c.Ready ~= nil and c.Ready.status == "True" then
  local msg = string.format("%d GPUs used of %d guaranteed", obj.status.used or 0, obj.status.guaranteed or 0)
  if (obj.status.pending or 0) > 0 then
    msg = msg .. string.format(", %d pending", obj.status.pending)
  end
  return {status = "Healthy", message = msg}
end
return {status = "Progressing", message = "Waiting for the operator to arbitrate its quotas"}
